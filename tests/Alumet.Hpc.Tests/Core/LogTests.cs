using System.Diagnostics;
using Alumet.Hpc.Core;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Outputs;
using Alumet.Hpc.Tests.Spool;

namespace Alumet.Hpc.Tests.Core;

/// <summary>Logging never throws (Core/Log.cs): a foreground command whose terminal hung up still finishes its work.
/// In the "Log" collection (SlurmHookTests: not in parallel with anything): it configures the process-wide log and
/// swaps <see cref="Console.Error"/>.</summary>
[Collection("Log")]
public sealed class LogTests
{
    private sealed class HungUpTerminal : StringWriter
    {
        public override void WriteLine(string? value) => throw new IOException("Input/output error");
        public override void Write(string? value) => throw new IOException("Input/output error");
    }

    [Fact]
    public void AStderrThatFailsNeitherThrowsNorLosesTheLogFileLine()
    {
        string dir = Directory.CreateTempSubdirectory("alumet-log-").FullName;
        string file = Path.Combine(dir, "alumet-hpc.log");
        var old = Console.Error;
        Console.SetError(new HungUpTerminal());
        try
        {
            Log.Configure(file, "alumet-hpc", syslog: false, stderr: true);
            Log.Error("job 1: finalization failed: test");
            Log.Info("job 1: after it");
        }
        finally
        {
            Console.SetError(old);
            Log.Configure(null, "alumet-hpc", syslog: false, stderr: false);
        }
        string[] lines = File.ReadAllLines(file);
        Assert.Equal(2, lines.Length);
        Assert.EndsWith("error: job 1: finalization failed: test", lines[0]);
        Assert.EndsWith("info: job 1: after it", lines[1]);
        Directory.Delete(dir, true);
    }
    /// <summary>
    /// The log names jobs, their reasons and their users' keyed Parquet paths: 0640 (README "Configuration", Logs). A hook
    /// (the real binary, as slurmd runs it: root, umask 022) whose first line cannot be written (a full filesystem, as a
    /// full /var/log) leaves a file no other user can read, and the next line, once there is room, keeps it so. Fails on
    /// 682d3dc: the file was created with the umask's mode (0644) and closed to others only after its first line was
    /// written, so that line's failure left it readable by every user for good (and until then anyone could open it).
    /// </summary>
    [SkippableFact]
    public void ALogFileIsNeverReadableByOthersEvenWhenItsFirstLineCouldNotBeWritten()
    {
        Skip.If(Environment.UserName != "root", "needs root to mount a small tmpfs (a real full filesystem)");
        using var dir = new TempDir();
        string mount = dir.Sub("log");
        Directory.CreateDirectory(mount);
        string log = Path.Combine(mount, "alumet-hpc.log");
        string config = dir.Sub("alumet.toml");
        File.WriteAllText(config, $"""
            [paths]
            state_dir = "{dir.Sub("state")}"
            data_dir = "{dir.Sub("data")}"
            database = "{dir.Sub("accounting.db")}"
            log_file = "{log}"
            """);
        Assert.Equal(0, SpoolWriterFullDiskTests.Run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mount));
        try
        {
            string filler = SpoolWriterFullDiskTests.Fill(mount);
            // No SLURM_* variable: the epilog logs one error line ("SLURM_JOB_ID (unset) is not a job id") and exits 0.
            int Epilog()
            {
                var psi = new ProcessStartInfo("/bin/sh", ["-c", "umask 022; exec \"$0\" slurm epilog --config \"$1\"", TestInstallation.Binary(), config])
                    { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var name in psi.Environment.Keys.Where(k => k.StartsWith("SLURM", StringComparison.Ordinal)).ToList()) psi.Environment.Remove(name);
                using var p = Process.Start(psi)!;
                p.WaitForExit();
                return p.ExitCode;
            }
            const UnixFileMode Mode0640 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;
            Assert.Equal(0, Epilog());
            Assert.Equal((0L, Mode0640), (new FileInfo(log).Length, File.GetUnixFileMode(log)));
            File.Delete(filler);
            Assert.Equal(0, Epilog());
            Assert.Contains("SLURM_JOB_ID", File.ReadAllText(log));
            Assert.Equal(Mode0640, File.GetUnixFileMode(log));
        }
        finally { SpoolWriterFullDiskTests.Run("umount", "-l", mount); }
    }
}
