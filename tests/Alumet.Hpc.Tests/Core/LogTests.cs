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
        string config = Config(dir, log);
        Assert.Equal(0, SpoolWriterFullDiskTests.Run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mount));
        try
        {
            string filler = SpoolWriterFullDiskTests.Fill(mount);
            Assert.Equal(0, Epilog(config));
            Assert.Equal((0L, Mode0640), (new FileInfo(log).Length, File.GetUnixFileMode(log)));
            File.Delete(filler);
            Assert.Equal(0, Epilog(config));
            Assert.Contains("SLURM_JOB_ID", File.ReadAllText(log));
            Assert.Equal(Mode0640, File.GetUnixFileMode(log));
        }
        finally { SpoolWriterFullDiskTests.Run("umount", "-l", mount); }
    }

    private const UnixFileMode Mode0640 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;
    private const UnixFileMode Mode0644 = Mode0640 | UnixFileMode.OtherRead;
    private const UnixFileMode Mode0666 = Mode0644 | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    private static string Config(TempDir dir, string log)
    {
        string config = dir.Sub("alumet.toml");
        File.WriteAllText(config, $"""
            [paths]
            state_dir = "{dir.Sub("state")}"
            data_dir = "{dir.Sub("data")}"
            database = "{dir.Sub("accounting.db")}"
            log_file = "{log}"
            """);
        return config;
    }

    private static string Existing(string path, string text, UnixFileMode mode)
    {
        File.WriteAllText(path, text);
        File.SetUnixFileMode(path, mode);
        return path;
    }

    /// <summary>The real binary's Slurm epilog as slurmd runs it (umask 022). No SLURM_* variable: it logs one error line
    /// ("SLURM_JOB_ID (unset) is not a job id") and exits 0.</summary>
    private static int Epilog(string config)
    {
        var psi = new ProcessStartInfo("/bin/sh", ["-c", "umask 022; exec \"$0\" slurm epilog --config \"$1\"", TestInstallation.Binary(), config])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var name in psi.Environment.Keys.Where(k => k.StartsWith("SLURM", StringComparison.Ordinal)).ToList()) psi.Environment.Remove(name);
        using var p = Process.Start(psi)!;
        if (!p.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"the epilog had not returned after 30 s (log_file in {config})");
        }
        return p.ExitCode;
    }

    /// <summary>
    /// A log file that already exists readable by others (0644: left by a version before 93b5575 whose first line failed,
    /// or made by logrotate's <c>create</c> without a mode) is closed to them by the next hook that opens it (0640, its
    /// owner's and group's bits kept), and the line is written after what it held. README "Configuration", Logs. Fails on
    /// 7615b1e: an existing file kept its mode, so every user of the node read its lines for good.
    /// </summary>
    [Fact]
    public void AnExistingLogFileOthersCanReadIsClosedToThemByTheNextHook()
    {
        using var dir = new TempDir();
        string log = Existing(dir.Sub("alumet-hpc.log"), "an earlier line\n", Mode0644);
        string config = Config(dir, log);
        Assert.Equal(0, Epilog(config));
        Assert.Equal(Mode0640, File.GetUnixFileMode(log));
        string[] lines = File.ReadAllLines(log);
        Assert.Equal(2, lines.Length);
        Assert.Equal("an earlier line", lines[0]);
        Assert.Contains("SLURM_JOB_ID", lines[1]);
        // Only others' bits go: a group the admin gave write (0664, root:adm) keeps it.
        File.SetUnixFileMode(log, Mode0644 | UnixFileMode.GroupWrite);
        Assert.Equal(0, Epilog(config));
        Assert.Equal((Mode0640 | UnixFileMode.GroupWrite, 3), (File.GetUnixFileMode(log), File.ReadAllLines(log).Length));
    }

    /// <summary>
    /// What is not a regular file is written and left as it is: /dev/null as log_file (mode 0666 after the hook), and a
    /// FIFO a reader drains (its 0666 kept, the line read from it). README "Configuration", Logs.
    /// </summary>
    [Fact]
    public void ADeviceOrAFifoAsTheLogFileIsWrittenAndLeftAsItIs()
    {
        using var dir = new TempDir();
        var devNull = File.GetUnixFileMode("/dev/null");
        try
        {
            Assert.Equal(0, Epilog(Config(dir, "/dev/null")));
            Assert.Equal(devNull, File.GetUnixFileMode("/dev/null"));
        }
        finally { if (File.GetUnixFileMode("/dev/null") != devNull) File.SetUnixFileMode("/dev/null", devNull); }

        string fifo = dir.Sub("log.fifo");
        Assert.Equal(0, SpoolWriterFullDiskTests.Run("mkfifo", "-m", "666", fifo));
        // Held open read-write (an open that does not wait for a writer): the hook's opens find a reader, its lines wait in
        // the pipe until it has exited.
        using var pipe = new FileStream(File.OpenHandle(fifo, FileMode.Open, FileAccess.ReadWrite), FileAccess.ReadWrite, 0);
        Assert.Equal(0, Epilog(Config(dir, fifo)));
        var buffer = new byte[65536];
        var read = Task.Run(() => pipe.Read(buffer)); // what the pipe holds; waits (and fails below) only if it holds nothing
        Assert.True(read.Wait(TimeSpan.FromSeconds(10)), "the hook wrote nothing to the FIFO");
        Assert.Contains("SLURM_JOB_ID", System.Text.Encoding.UTF8.GetString(buffer, 0, read.Result));
        Assert.Equal(Mode0666, File.GetUnixFileMode(fifo));
    }

    /// <summary>
    /// A FIFO as log_file that no process reads does not hold the hook: the open does not wait for a reader (O_NONBLOCK:
    /// ENXIO), the line is lost to the file (syslog has it) and the epilog exits 0 at once. README "Configuration", Logs.
    /// Fails on 167ce88: the open waited for a reader for good, and the epilog with it (killed here after 30 s).
    /// </summary>
    [Fact]
    public void AFifoNobodyReadsAsTheLogFileDoesNotHoldTheHook()
    {
        using var dir = new TempDir();
        string fifo = dir.Sub("log.fifo");
        Assert.Equal(0, SpoolWriterFullDiskTests.Run("mkfifo", "-m", "600", fifo));
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, Epilog(Config(dir, fifo)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the epilog took {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(fifo));
    }

    /// <summary>
    /// A symbolic link at log_file is never followed (O_NOFOLLOW): the file it points to gets no line and keeps its mode;
    /// the line is lost (syslog still has it). A file with another name too (a hard link) gets the line but keeps its
    /// mode: what the log's path names may be a file of the node's own. README "Configuration", Logs. Fails on 7615b1e:
    /// the link was followed and the line appended to the file it points to.
    /// </summary>
    [Fact]
    public void ALinkAtTheLogPathIsNotFollowedAndAHardLinkedFileKeepsItsMode()
    {
        using var dir = new TempDir();
        string target = Existing(dir.Sub("elsewhere.txt"), "", Mode0644);
        string log = dir.Sub("alumet-hpc.log");
        File.CreateSymbolicLink(log, target);
        Assert.Equal(0, Epilog(Config(dir, log)));
        Assert.Equal((0L, Mode0644), (new FileInfo(target).Length, File.GetUnixFileMode(target)));

        File.Delete(log);
        Assert.Equal(0, SpoolWriterFullDiskTests.Run("ln", target, log));
        Assert.Equal(0, Epilog(Config(dir, log)));
        Assert.Contains("SLURM_JOB_ID", File.ReadAllText(target));
        Assert.Equal(Mode0644, File.GetUnixFileMode(target));
    }
}
