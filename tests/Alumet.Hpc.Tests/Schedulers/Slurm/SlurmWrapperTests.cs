using System.Diagnostics;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Report;

namespace Alumet.Hpc.Tests.Schedulers.Slurm;

/// <summary>
/// The Prolog/Epilog wrappers of slurm/ as an admin installs them (their two paths edited to this installation), run
/// as slurmd runs them: no argv, no PATH, no HOME, the job in the environment. The configuration file is optional
/// (README, Install step 2; slurm/README.md step 3): without it the job is still measured.
/// </summary>
public sealed class SlurmWrapperTests
{
    private const ulong MaxRange = 262_143_328_850;

    /// <summary>The repository's wrapper with its binary and config paths edited, as its comment tells admins to.</summary>
    private static string Wrapper(TestInstallation install, string kind, string configFile)
    {
        string text = File.ReadAllText(Path.Combine(TwoUsersInstallation.RepoRoot(), "slurm", $"alumet-slurm-{kind}"))
            .Replace("/usr/local/bin/alumet-hpc", TestInstallation.Binary(), StringComparison.Ordinal)
            .Replace("/etc/alumet-hpc/alumet.toml", configFile, StringComparison.Ordinal);
        return Executables.Write(install.PathOf("hooks", kind), text);
    }

    private static int Run(string wrapper, string jobId, string? configEnv)
    {
        var psi = new ProcessStartInfo("/bin/sh", [wrapper]) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment.Clear();
        foreach (var (k, v) in new Dictionary<string, string>
                 {
                     ["SLURM_JOB_ID"] = jobId, ["SLURM_JOB_USER"] = "root", ["SLURM_JOB_UID"] = "0", ["SLURM_JOB_GID"] = "0",
                     ["SLURMD_NODENAME"] = "node1", ["SLURM_CLUSTER_NAME"] = "test",
                     ["SLURM_SCRIPT_CONTEXT"] = Path.GetFileName(wrapper) + "_slurmd",
                 })
            psi.Environment[k] = v;
        // slurmd's own environment (its systemd unit), the only source of the variable for a hook.
        if (configEnv is not null) psi.Environment["ALUMET_HPC_CONFIG"] = configEnv;
        using var p = Process.Start(psi)!;
        Assert.True(p.WaitForExit(60_000));
        Assert.Equal(("", ""), (p.StandardOutput.ReadToEnd(), p.StandardError.ReadToEnd()));
        return p.ExitCode;
    }

    /// <summary>
    /// Before: the wrappers always passed <c>--config /etc/alumet-hpc/alumet.toml</c>, so a node without that file logged
    /// "config file not found; check the --config path; nothing done" at every job: no job was ever measured.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TheWrappersMeasureTheJobWithOrWithoutAConfigFile(bool file)
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nattribution = \"exclusive\"\nlinger_s = 0");
        // With the file: the one the wrappers name. Without: a path that does not exist, and the installation's config
        // reached the way alumet-hpc looks for one when no --config is given.
        string configFile = file ? install.ConfigPath : install.PathOf("etc/alumet.toml");
        string prolog = Wrapper(install, "prolog", configFile), epilog = Wrapper(install, "epilog", configFile);
        string? env = file ? null : install.ConfigPath;
        Assert.Equal(0, Run(prolog, "711", env));
        install.Powercap.SetEnergy("intel-rapl:0", 1_000_000);
        Thread.Sleep(300);
        install.Powercap.SetEnergy("intel-rapl:0", 2_000_000);
        Thread.Sleep(300);
        Assert.Equal(0, Run(epilog, "711", env));
        Assert.True(File.Exists(install.Config.Paths.Database), File.Exists("/var/log/alumet-hpc.log") ? File.ReadLines("/var/log/alumet-hpc.log").LastOrDefault() : "no row");
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("711"));
        Assert.Equal((JobStatus.Complete, ""), (row.Status, row.Reason));
        Assert.True(row.Energy.PackageJ > 0, $"{row.Energy.PackageJ} J");
    }
}

/// <summary>
/// <c>&lt;state_dir&gt;/slurm</c> lists every job of the node (state dirs, <c>N.finalized</c> markers with the status and
/// reason): root's only. Through the bare binary as slurmd runs it, then as an ordinary user (nobody).
/// </summary>
public sealed class SchedulerStateDirTests
{
    private const ulong MaxRange = 262_143_328_850;

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)] // left 0755 by an earlier version
    public void TheSchedulersStateDirIsRootsOnly(bool leftOpen)
    {
        Skip.If(Environment.UserName != "root" || !File.Exists("/usr/sbin/runuser"), "needs root and runuser");
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nattribution = \"exclusive\"\nlinger_s = 0");
        File.SetUnixFileMode(install.Root, (UnixFileMode)0b111_101_101); // as /var/lib/alumet-hpc: others may traverse
        string slurm = Path.Combine(install.Config.Paths.StateDir, "slurm");
        if (leftOpen) Directory.CreateDirectory(slurm, (UnixFileMode)0b111_101_101);
        foreach (string context in new[] { "prolog_slurmd", "epilog_slurmd" })
        {
            using var p = install.StartSlurmHook(context, "721");
            Assert.True(p.WaitForExit(60_000));
        }
        AssertRootsOnly(slurm, "721");
    }

    /// <summary>
    /// <paramref name="stateDir"/> (a scheduler's, or exec's) holds job <paramref name="jobId"/>'s marker, finalized
    /// complete, and is 0700: an ordinary user (nobody) can neither list it nor read the marker.
    /// </summary>
    internal static void AssertRootsOnly(string stateDir, string jobId)
    {
        string marker = Path.Combine(stateDir, jobId + ".finalized");
        Assert.StartsWith("complete", File.ReadAllText(marker));
        Assert.Equal((UnixFileMode)0b111_000_000, File.GetUnixFileMode(stateDir));
        foreach (var cmd in new[] { new[] { "/bin/ls", stateDir }, ["/bin/cat", marker] })
        {
            var r = TwoUsersInstallation.Sh($"/usr/sbin/runuser -u nobody -- {string.Join(' ', cmd)}");
            Assert.NotEqual(0, r.Code);
            Assert.DoesNotContain(jobId, r.Out);
        }
    }
}
