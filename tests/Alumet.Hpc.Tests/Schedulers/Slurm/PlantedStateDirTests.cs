using System.Diagnostics;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Schedulers.Slurm;

/// <summary>
/// Root's <c>[paths] state_dir</c> holds the node lock, the sampler's pid file and socket, the node's 1 kHz series
/// (<c>node/&lt;day&gt;</c>), every job's spool and marker, the outbox of accounting rows and <c>dataset.key</c>: root
/// uses none that a user could have planted or could swap (README "Configuration", State). Through the real binary's
/// Slurm prolog and epilog as slurmd runs them (root), with a generated powercap tree.
/// </summary>
public sealed class PlantedStateDirTests
{
    private const ulong MaxRange = 262_143_328_850;
    private const string Fix = "or choose a directory only root can write";

    /// <summary>
    /// A state_dir below a directory a user owns or may write without the sticky bit (they could put a directory of theirs
    /// in its place), through a symbolic link, or whose <c>node</c> or <c>slurm</c> is a user's directory or a link (made
    /// while state_dir was open to them): root's prolog and epilog use none of it, write nothing there, and each says why
    /// and how to fix it in one log line; both exit 0, and nothing is measured. A root-owned directory writable by others
    /// with the sticky bit (/tmp), or one the hook makes, is used: the job's row is complete. README "Configuration",
    /// State. Fails on 69c27c5: root made the node's spool, socket, the job's state, the outbox and the key in each.
    /// </summary>
    [SkippableTheory]
    [InlineData("parent 65534:65534 0755", "directory {parent} is owned by uid 65534, not root (chown root {parent}, " + Fix + ")")]
    [InlineData("parent 0:0 0777", "directory {parent} is writable by others without the sticky bit, mode 0777 (chmod o-w {parent}, " + Fix + ")")]
    [InlineData("parent 0:65534 0775", "directory {parent} is writable by group 65534, mode 0775 (chmod g-w {parent}, " + Fix + ")")]
    [InlineData("state link", "{state} is a symbolic link, which is not followed (give the real path)")]
    [InlineData("node 65534:65534 0700", "directory {state}/node is owned by uid 65534, not root (chown root {state}/node, " + Fix + ")")]
    [InlineData("slurm link", "{state}/slurm is a symbolic link, which is not followed (remove it)")]
    [InlineData("parent 0:0 1777", null)]
    [InlineData("made", null)]
    public void AStateDirAUserCouldPlantIsNotUsedByRootsHooks(string planted, string? why)
    {
        Skip.If(Environment.UserName != "root", "needs root (directories of another user's)");
        using var install = Install(out string parent, out string state);
        string users = install.PathOf("users"); // a user's own directory, where a link of theirs points
        string[] p = planted.Split(' ');
        string place = p[0] switch { "parent" => parent, "made" => parent, _ => users };
        if (p[0] == "parent") Plant(parent, p[1], p[2]);
        else if (p[0] == "node") { Directory.CreateDirectory(state); Plant(place = Path.Combine(state, "node"), p[1], p[2]); }
        else if (p[0] != "made")
        {
            Plant(users, "65534:65534", "0755");
            Directory.CreateDirectory(Path.GetDirectoryName(state)!);
            if (p[0] == "slurm") Directory.CreateDirectory(state);
            Directory.CreateSymbolicLink(p[0] == "state" ? state : Path.Combine(state, "slurm"), users);
        }

        string id = "731";
        Hook(install, "prolog_slurmd", id);
        install.Powercap.SetEnergy("intel-rapl:0", 1_000_000);
        Thread.Sleep(300);
        install.Powercap.SetEnergy("intel-rapl:0", 2_000_000);
        Thread.Sleep(300);
        Hook(install, "epilog_slurmd", id);

        string log = File.ReadAllText(install.Config.Paths.LogFile);
        if (why is null)
        {
            Assert.DoesNotContain("[paths] state_dir", log);
            Assert.Equal(((uint, uint)?)(0, 0), Alumet.Hpc.Native.Libc.StatLink(state)?.Owner);
            using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
            Assert.Equal(JobStatus.Complete, Assert.Single(db.GetJob(id)).Status);
            return;
        }
        // Nothing of root's in the user's place (for node: nothing in it; its state_dir holds only what was planted).
        Assert.Equal([], Entries(p[0] == "parent" ? parent : place));
        if (p[0] is "node" or "slurm") Assert.Equal([p[0]], Entries(state));
        string said = $"[paths] state_dir {state} not used: {why.Replace("{parent}", parent).Replace("{state}", state)}; nothing done";
        Assert.Equal(new[] { "prolog", "epilog" }, log.Split('\n').Where(l => l.Contains(said, StringComparison.Ordinal))
            .Select(l => l.Contains("slurm prolog_slurmd: ", StringComparison.Ordinal) ? "prolog" : l.Contains("slurm epilog_slurmd: ", StringComparison.Ordinal) ? "epilog" : l));
        Assert.False(File.Exists(install.Config.Paths.Database), "a row was written");
    }

    /// <summary>
    /// Root's other ways into state_dir refuse such a state_dir too, before anything is made or run: <c>exec</c> (exit 2,
    /// the command not run), the node sampler started by hand or by a unit, and a job's own <c>sample</c> (exit 77), each
    /// in one sentence on stderr.
    /// README "Configuration", State. Fails on 69c27c5: exec ran the command, measured (0, "").
    /// </summary>
    [SkippableFact]
    public void RootsExecAndNodeSamplerRefuseAStateDirAUserCouldPlant()
    {
        Skip.If(Environment.UserName != "root", "needs root (directories of another user's)");
        using var install = Install(out string parent, out string state);
        Plant(parent, "65534:65534", "0755");
        string why = $"[paths] state_dir {state} not used: directory {parent} is owned by uid 65534, not root (chown root {parent}, {Fix})";
        string ran = install.PathOf("ran");
        Assert.Equal((2, $"alumet-hpc: exec: {why}; nothing measured\n"),
            Binary(["exec", "--config", install.ConfigPath, "--job-id", ExecIds.Next(), "--no-report", "--", "/bin/touch", ran]));
        Assert.False(File.Exists(ran), "the command ran");
        Assert.Equal((77, $"alumet-hpc: node-sampler: {why}\n"), Binary(["node-sampler", "--config", install.ConfigPath]));
        Assert.Equal((77, $"alumet-hpc: sample: {why}\n"),
            Binary(["sample", "--config", install.ConfigPath, "--scheduler", "slurm", "--job-id", "732", "--user", "root", "--uid", "0"]));
        Assert.Equal([], Entries(parent));
    }

    /// <summary>The published binary as root: its exit code and stderr (killed after 30 s).</summary>
    private static (int Code, string Err) Binary(string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var err = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000)) p.Kill(entireProcessTree: true);
        p.WaitForExit();
        return (p.ExitCode, err.Result);
    }

    /// <summary>A test installation whose state_dir is <c>parent/state</c> (neither made).</summary>
    internal static TestInstallation Install(out string parent, out string state)
    {
        var install = new TestInstallation(PowercapTree.Standard(1, MaxRange),
            "storage_period_ms = 100\nattribution_period_ms = 100\nflush_interval_ms = 100\nattribution = \"exclusive\"\nlinger_s = 0");
        parent = install.PathOf("parent");
        state = Path.Combine(parent, "state");
        string text = File.ReadAllText(install.ConfigPath);
        File.WriteAllText(install.ConfigPath, text.Replace($"state_dir = \"{install.PathOf("state")}\"", $"state_dir = \"{state}\"", StringComparison.Ordinal));
        Assert.Contains(state, File.ReadAllText(install.ConfigPath));
        return install;
    }

    /// <summary>Makes <paramref name="dir"/> with that owner and mode.</summary>
    internal static void Plant(string dir, string owner, string mode)
    {
        Directory.CreateDirectory(dir);
        Assert.Equal(0, Run("/bin/chown", owner, dir));
        Assert.Equal(0, Run("/bin/chmod", mode, dir));
    }

    /// <summary>What <paramref name="dir"/> holds, all the way down (paths relative to it), sorted.</summary>
    internal static string[] Entries(string dir) =>
        [.. Directory.EnumerateFileSystemEntries(dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Select(e => Path.GetRelativePath(dir, e)).Order(StringComparer.Ordinal)];

    private static int Run(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        p.WaitForExit();
        return p.ExitCode;
    }

    /// <summary>The bare binary as slurmd runs the hook; it exits 0 within 60 s.</summary>
    private static void Hook(TestInstallation install, string context, string id)
    {
        using var p = install.StartSlurmHook(context, id);
        Assert.True(p.WaitForExit(60_000), $"{context} had not returned after 60 s");
        Assert.Equal(0, p.ExitCode);
    }
}
