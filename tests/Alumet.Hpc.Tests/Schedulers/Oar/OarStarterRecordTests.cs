using Xunit;
using Alumet.Hpc.Schedulers.Oar;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Schedulers.Oar;

public sealed class OarStarterRecordTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("alumet-oar-state-").FullName;
    public void Dispose() => Directory.Delete(_state, recursive: true);

    [Fact]
    public void Write_read_delete_round_trip()
    {
        Assert.Null(OarStarterRecord.Read(_state, "7"));
        Assert.True(OarStarterRecord.Write(_state, "7", OarStarterRecord.ResourceManager));
        Assert.Equal(Path.Combine(_state, "oar-starters", "7"), OarStarterRecord.PathFor(_state, "7"));
        Assert.Equal("resource-manager\n", File.ReadAllText(Path.Combine(_state, "oar-starters", "7")));
        Assert.Equal("resource-manager", OarStarterRecord.Read(_state, "7"));
        Assert.Null(OarStarterRecord.Read(_state, "70"));
        OarStarterRecord.Delete(_state, "7");
        Assert.Null(OarStarterRecord.Read(_state, "7"));
        OarStarterRecord.Delete(_state, "7"); // twice: no throw
    }

    [Fact]
    public void Unknown_content_is_no_record()
    {
        Directory.CreateDirectory(Path.Combine(_state, "oar-starters"));
        File.WriteAllText(Path.Combine(_state, "oar-starters", "8"), "someone-else\n");
        Assert.Null(OarStarterRecord.Read(_state, "8"));
    }

    [Fact]
    public void Unwritable_state_dir_reports_false()
    {
        string file = Path.Combine(_state, "plainfile");
        File.WriteAllText(file, "");
        Assert.False(OarStarterRecord.Write(file, "9", OarStarterRecord.Prologue));
    }
}

/// <summary>
/// <c>&lt;state_dir&gt;/oar-starters</c> holds one record per OAR job running on the node: root's only, as
/// <c>&lt;state_dir&gt;/oar</c> (README "Data"). Through the real binary as job_resource_manager_alumet.pl runs it
/// (init, then clean), then as an ordinary user (nobody). Fails on 682d3dc: the directory was made with the umask's mode,
/// 0755, and nobody's <c>ls</c> listed the job ("Expected: UserRead, UserWrite, UserExecute / Actual: UserRead, UserWrite,
/// UserExecute, GroupRead, GroupExecute, OtherRead, OtherExecute").
/// </summary>
public sealed class OarStarterDirTests
{
    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)] // left 0755 by an earlier version
    public void TheStartersDirectoryIsRootsOnly(bool leftOpen)
    {
        Skip.If(Environment.UserName != "root" || !File.Exists("/usr/sbin/runuser"), "needs root and runuser");
        using var install = new TestInstallation(PowercapTree.Standard(1, 262_143_328_850),
            "storage_period_ms = 1000\nflush_interval_ms = 100\nattribution = \"exclusive\"\nlinger_s = 0");
        File.SetUnixFileMode(install.Root, (UnixFileMode)0b111_101_101); // as /var/lib/alumet-hpc: others may traverse
        string starters = Path.Combine(install.Config.Paths.StateDir, "oar-starters");
        if (leftOpen) Directory.CreateDirectory(starters, (UnixFileMode)0b111_101_101);
        Assert.Equal(0, OarRawRequestTests.ResourceManager(install, "init", "611"));
        Assert.Equal("resource-manager\n", File.ReadAllText(Path.Combine(starters, "611")));
        Assert.Equal((UnixFileMode)0b111_000_000, File.GetUnixFileMode(starters));
        var ls = Alumet.Hpc.Tests.Report.TwoUsersInstallation.Sh($"/usr/sbin/runuser -u nobody -- /bin/ls {starters}");
        Assert.NotEqual(0, ls.Code);
        Assert.DoesNotContain("611", ls.Out);
        Assert.Equal(0, OarRawRequestTests.ResourceManager(install, "clean", "611"));
        Assert.False(File.Exists(Path.Combine(starters, "611")));
    }
}
