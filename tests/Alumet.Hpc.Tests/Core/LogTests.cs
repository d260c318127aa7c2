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

    /// <summary>Two lines through the Log API (as a hook's process logs), <see cref="Console.Error"/> being
    /// <paramref name="error"/> meanwhile.</summary>
    private static void TwoLines(string file, TextWriter error, bool stderr)
    {
        var old = Console.Error;
        Console.SetError(error);
        try
        {
            Log.Configure(file, "alumet-hpc", syslog: false, stderr: stderr);
            Log.Error("job 1: finalization failed: test");
            Log.Info("job 1: after it");
        }
        finally
        {
            Console.SetError(old);
            Log.Configure(null, "alumet-hpc", syslog: false, stderr: false);
        }
    }

    [Fact]
    public void AStderrThatFailsNeitherThrowsNorLosesTheLogFileLine()
    {
        string dir = Directory.CreateTempSubdirectory("alumet-log-").FullName;
        string file = Path.Combine(dir, "alumet-hpc.log");
        TwoLines(file, new HungUpTerminal(), stderr: true);
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
            Assert.Equal(0, Epilog(config, out string stderr));
            Assert.Equal((0L, Mode0640), (new FileInfo(log).Length, File.GetUnixFileMode(log)));
            SaysWhyThenTheLine(stderr, log, $"cannot write to {log} (No space left on device)");
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
    private static int Epilog(string config) => Epilog(config, out _);

    /// <inheritdoc cref="Epilog(string)"/>
    /// <param name="stderr">What it wrote to stderr.</param>
    private static int Epilog(string config, out string stderr)
    {
        var psi = new ProcessStartInfo("/bin/sh", ["-c", "umask 022; exec \"$0\" slurm epilog --config \"$1\"", TestInstallation.Binary(), config])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var name in psi.Environment.Keys.Where(k => k.StartsWith("SLURM", StringComparison.Ordinal)).ToList()) psi.Environment.Remove(name);
        using var p = Process.Start(psi)!;
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"the epilog had not returned after 30 s (log_file in {config})");
        }
        stderr = error.Result;
        return p.ExitCode;
    }

    /// <summary>The epilog's one line (<see cref="Epilog(string)"/>) on stderr, to its elapsed time.</summary>
    private const string EpilogLine = "alumet-hpc: error: slurm epilog: refused: SLURM_JOB_ID (unset) is not a job id (digits); nothing done (";

    /// <summary>What a log file root does not write says first on stderr (then the line).</summary>
    private static string Said(string log, string why) => $"alumet-hpc: log_file {log} not written, its lines go to stderr: {why}";

    private static void Chown(string path, string owner) => Assert.Equal(0, SpoolWriterFullDiskTests.Run("chown", owner, path));

    /// <summary>Asserts that <paramref name="stderr"/> is the reason then the epilog's line, nothing else.</summary>
    private static void SaysWhyThenTheLine(string stderr, string log, string why)
    {
        string[] lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Equal(Said(log, why), lines[0]);
        Assert.StartsWith(EpilogLine, lines[1]);
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
    /// ENXIO), the line goes to stderr after why, and the epilog exits 0 at once. README "Configuration", Logs.
    /// Fails on 167ce88: the open waited for a reader for good, and the epilog with it (killed here after 30 s).
    /// </summary>
    [Fact]
    public void AFifoNobodyReadsAsTheLogFileDoesNotHoldTheHook()
    {
        using var dir = new TempDir();
        string fifo = dir.Sub("log.fifo");
        Assert.Equal(0, SpoolWriterFullDiskTests.Run("mkfifo", "-m", "600", fifo));
        var clock = Stopwatch.StartNew();
        Assert.Equal(0, Epilog(Config(dir, fifo), out string stderr));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the epilog took {clock.Elapsed.TotalSeconds:F1} s");
        SaysWhyThenTheLine(stderr, fifo, $"cannot open {fifo} (No such device or address)");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(fifo));
    }

    /// <summary>
    /// The epilog with something <paramref name="plant"/> put at log_file (given the log's path and a root-owned 0644 file
    /// beside it that holds "the node's own\n"; it returns the file that must stay as it is): that file keeps its bytes
    /// and its mode, and stderr says <paramref name="why"/> (given the log's path), then the line.
    /// </summary>
    private static void NotWritten(Func<string, string, string> plant, Func<string, string> why)
    {
        using var dir = new TempDir();
        string target = Existing(dir.Sub("elsewhere.txt"), "the node's own\n", Mode0644);
        string log = dir.Sub("alumet-hpc.log");
        string kept = plant(log, target);
        Assert.Equal(0, Epilog(Config(dir, log), out string stderr));
        Assert.Equal(("the node's own\n", Mode0644), (File.ReadAllText(kept), File.GetUnixFileMode(kept)));
        SaysWhyThenTheLine(stderr, log, why(log));
    }

    /// <summary>
    /// A symbolic link at log_file is never followed (O_NOFOLLOW): the file it points to gets no line and keeps its mode;
    /// the line goes to stderr after why (syslog still has it). README "Configuration", Logs.
    /// </summary>
    [Fact]
    public void ALinkAtTheLogPathIsNotFollowed() => NotWritten(
        (log, target) => { File.CreateSymbolicLink(log, target); return target; },
        log => $"{log} is a symbolic link, which is not followed (give the real path)");

    /// <summary>
    /// A log file with another name too (a hard link: st_nlink 2) is not written by root, nor is its mode changed: what
    /// the log's path names may be a file of the node's own, linked there (a user may link their own files whatever
    /// fs.protected_hardlinks says). The line goes to stderr, after why. README "Configuration", Logs. Fails on 13b113e:
    /// the line was appended to the linked file.
    /// </summary>
    [SkippableFact]
    public void ALogFileWithOtherNamesIsNotWritten()
    {
        Skip.If(Environment.UserName != "root", "root's rule (a user's own log is theirs)");
        NotWritten((log, target) => { Assert.Equal(0, SpoolWriterFullDiskTests.Run("ln", target, log)); return target; },
            log => $"{log} has 2 names, hard links (remove the others, or choose another path)");
    }

    /// <summary>
    /// A log file a user owns (planted before root made it, or put in its place) is not written by root, nor is its mode
    /// changed: its owner would read every hook's line (other users' jobs, reasons) and control the file. The line goes
    /// to stderr, after why and how to fix it. README "Configuration", Logs. Fails on 13b113e: root appended the line to
    /// the user's file (and made it 0640, still theirs).
    /// </summary>
    [SkippableFact]
    public void ALogFileAUserOwnsIsNotWritten()
    {
        Skip.If(Environment.UserName != "root", "needs root (a file of another user's)");
        NotWritten((log, target) => { File.Move(target, log); Chown(log, "65534:65534"); return log; },
            log => $"{log} is owned by uid 65534, not root (chown root {log}, or choose a directory only root can write)");
    }

    /// <summary>
    /// Every directory on log_file's path is checked from / down (each below one that passed, which no user can then
    /// change before the open): root does not write the
    /// log below a symbolic link (followed, it would send root's file anywhere), nor below a directory a user owns or may
    /// write without the sticky bit (they could put a directory or a file of theirs in its place). The line goes to
    /// stderr after why, and no file is made. A root-owned directory writable by others with the sticky bit (/tmp),
    /// writable by root's group, or made by the hook itself, is used. README "Configuration", Logs. Fails on 13b113e:
    /// the log was made and written below each of the four.
    /// </summary>
    [SkippableTheory]
    [InlineData("link", "{0} is a symbolic link, which is not followed (give the real path)")]
    [InlineData("65534:65534 0755", "directory {0} is owned by uid 65534, not root (chown root {0}, or choose a directory only root can write)")]
    [InlineData("0:0 0777", "directory {0} is writable by others without the sticky bit, mode 0777 (chmod o-w {0}, or choose a directory only root can write)")]
    [InlineData("0:65534 0775", "directory {0} is writable by group 65534, mode 0775 (chmod g-w {0}, or choose a directory only root can write)")]
    [InlineData("0:0 1777", null)]
    [InlineData("0:0 0775", null)]
    [InlineData("made", null)]
    public void ALogBelowADirectoryAUserCouldSwapIsNotWritten(string directory, string? why)
    {
        Skip.If(Environment.UserName != "root", "needs root (directories of another user's)");
        using var dir = new TempDir();
        string sub = dir.Sub("sub"), log = Path.Combine(sub, "deeper", "alumet-hpc.log");
        string real = dir.Sub("real");
        if (directory == "link")
        {
            Directory.CreateDirectory(Path.Combine(real, "deeper"));
            File.CreateSymbolicLink(sub, real);
        }
        else if (directory != "made")
        {
            Directory.CreateDirectory(Path.Combine(sub, "deeper"));
            string[] ownerMode = directory.Split(' ');
            Chown(sub, ownerMode[0]);
            Assert.Equal(0, SpoolWriterFullDiskTests.Run("chmod", ownerMode[1], sub));
        }
        Assert.Equal(0, Epilog(Config(dir, log), out string stderr));
        if (why is null)
        {
            Assert.Equal("", stderr);
            if (directory == "made") // root's, 0755 (the hook's umask 022)
                foreach (string made in new[] { sub, Path.GetDirectoryName(log)! })
                    Assert.Equal((((uint, uint)?)(0, 0), (UnixFileMode)0b111_101_101), (Alumet.Hpc.Native.Libc.StatLink(made)?.Owner, File.GetUnixFileMode(made)));
            Assert.Equal(Mode0640, File.GetUnixFileMode(log));
            Assert.Contains("SLURM_JOB_ID", File.ReadAllText(log));
            return;
        }
        Assert.False(File.Exists(log) || File.Exists(Path.Combine(real, "deeper", "alumet-hpc.log")), "the log was made");
        SaysWhyThenTheLine(stderr, log, string.Format(why, sub));
    }

    /// <summary>
    /// Through the Log API the hooks use: a log file root does not write is explained once per process, and each line
    /// then goes to stderr (in the stderr form). README "Configuration", Logs. Fails on 13b113e: both lines were
    /// appended to the user's file and nothing reached stderr.
    /// </summary>
    [SkippableFact]
    public void ALogFileRootDoesNotWriteIsExplainedOnceAndItsLinesGoToStderr()
    {
        Skip.If(Environment.UserName != "root", "needs root (a file of another user's)");
        using var dir = new TempDir();
        string log = Existing(dir.Sub("alumet-hpc.log"), "", Mode0644);
        Chown(log, "65534:65534");
        var stderr = new StringWriter();
        TwoLines(log, stderr, stderr: false);
        Assert.Equal(0L, new FileInfo(log).Length);
        Assert.Equal(new[]
        {
            Said(log, $"{log} is owned by uid 65534, not root (chown root {log}, or choose a directory only root can write)"),
            "alumet-hpc: error: job 1: finalization failed: test",
            "alumet-hpc: info: job 1: after it",
        }, stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
