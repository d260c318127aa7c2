using System.Diagnostics;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// <c>&lt;state_dir&gt;/exec</c> (root's exec jobs' ids, state dirs and .finalized markers) is root's only, as
/// <c>&lt;state_dir&gt;/slurm</c> and <c>oar</c> are (SchedulerStateDirTests): root's <c>alumet-hpc exec</c> through the
/// published binary creates it 0700, or closes one an earlier version left 0755; another user can neither list it nor
/// read a marker. (A user's own exec keeps its state under its per-user state_dir.)
/// </summary>
public sealed class ExecStateDirTests
{
    private const ulong MaxRange = 262_143_328_850;

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)] // left 0755 by an earlier version
    public void TheExecStateDirIsRootsOnly(bool leftOpen)
    {
        Skip.If(Environment.UserName != "root" || !File.Exists("/usr/sbin/runuser"), "needs root and runuser");
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nattribution = \"exclusive\"\nlinger_s = 0");
        File.SetUnixFileMode(install.Root, (UnixFileMode)0b111_101_101); // as /var/lib/alumet-hpc: others may traverse
        Directory.CreateDirectory(install.Config.Paths.StateDir, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(install.Config.Paths.StateDir, (UnixFileMode)0b111_101_101);
        string exec = Path.Combine(install.Config.Paths.StateDir, "exec");
        string id = ExecIds.Next();
        if (leftOpen) Directory.CreateDirectory(exec, (UnixFileMode)0b111_101_101);
        using (var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(),
                   ["exec", "--config", install.ConfigPath, "--job-id", id, "--no-report", "--", "/bin/true"])
                   { RedirectStandardOutput = true, RedirectStandardError = true })!)
        {
            string stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, stderr);
        }
        Schedulers.Slurm.SchedulerStateDirTests.AssertRootsOnly(exec, id);
    }
}
