using Alumet.Hpc.Tests.Report;

namespace Alumet.Hpc.Tests.Schedulers;

/// <summary>
/// The scheduler install guides install <c>alumet-report</c> as README's Install does: the setgid gate, with the group
/// <c>alumet</c> and the database's directory. They used to make it a symlink to alumet-hpc, which cannot open the
/// 0640 root:alumet database for users: every user's report said "permission denied".
/// </summary>
public sealed class InstallGuideTests
{
    public static TheoryData<string> Guides => new() { "README.md", "slurm/README.md", "oar/README.md" };

    [Theory, MemberData(nameof(Guides))]
    public void EveryGuideInstallsTheReportGate(string guide)
    {
        string text = File.ReadAllText(Path.Combine(TwoUsersInstallation.RepoRoot(), guide));
        foreach (string line in new[]
        {
            "groupadd --system alumet",
            "install -o root -g alumet -m 2755 out/bin/alumet-report-gate /usr/local/bin/alumet-report",
            "install -d -o root -g alumet -m 751 /var/lib/alumet-hpc",
        })
            Assert.Contains(line, text);
        Assert.DoesNotContain("ln -sf alumet-hpc /usr/local/bin/alumet-report", text);
    }
}
