using System.Diagnostics;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Schedulers.Slurm;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>
/// Root's SQLite <c>[paths] database</c>: its rows are every user's jobs, and a file of a user's beside it (a -wal, a
/// -shm) would let them alter or lock out root's writers. Root writes no database a user could have planted or could
/// swap (README "Accounting database"). Through the real binary's Slurm prolog and epilog (root).
/// </summary>
public sealed class PlantedDatabaseTests
{
    private const string Fix = "or choose a directory only root can write";

    /// <summary>
    /// A database below a directory a user owns or may write without the sticky bit, or one whose file or -wal a user
    /// made (in root's sticky /tmp): root writes no row there; the job's row waits in the outbox (later hooks and
    /// <c>db flush</c> store it once the database is fixed), and the log says why and how to fix it. A database in a
    /// root-owned sticky directory, or one the writer makes, gets the row. README "Accounting database". Fails on
    /// b89f523: root made the database in the user's directory (or wrote into the user's file) and stored the row there.
    /// </summary>
    [SkippableTheory]
    [InlineData("parent 65534:65534 0755", "directory {parent} is owned by uid 65534, not root (chown root {parent}, " + Fix + ")")]
    [InlineData("parent 0:0 0777", "directory {parent} is writable by others without the sticky bit, mode 0777 (chmod o-w {parent}, " + Fix + ")")]
    [InlineData("file", "{db} is owned by uid 65534, not root (remove it, " + Fix + ")")]
    [InlineData("file -wal", "{db}-wal is owned by uid 65534, not root (remove it, " + Fix + ")")]
    [InlineData("parent 0:0 1777", null)]
    [InlineData("made", null)]
    public void ADatabaseAUserCouldPlantGetsNoRowFromRoot(string planted, string? why)
    {
        Skip.If(Environment.UserName != "root", "needs root (files of another user's)");
        using var install = PlantedStateDirTests.Install(out _, out string state);
        string parent = install.PathOf("db"), db = Path.Combine(parent, "accounting.db");
        string text = File.ReadAllText(install.ConfigPath);
        File.WriteAllText(install.ConfigPath, text.Replace($"database = \"{install.PathOf("accounting.db")}\"", $"database = \"{db}\"", StringComparison.Ordinal));
        Assert.Contains(db, File.ReadAllText(install.ConfigPath));
        string[] p = planted.Split(' ');
        if (p[0] == "parent") PlantedStateDirTests.Plant(parent, p[1], p[2]);
        else if (p[0] == "file")
        {
            PlantedStateDirTests.Plant(parent, "0:0", "1777");
            string file = db + (p.Length > 1 ? p[1] : "");
            File.WriteAllText(file, "");
            Assert.Equal(0, Alumet.Hpc.Native.Libc.chown(file, 65534, 65534));
        }

        string id = "733";
        foreach (string context in new[] { "prolog_slurmd", "epilog_slurmd" })
        {
            using var hook = install.StartSlurmHook(context, id);
            Assert.True(hook.WaitForExit(60_000), $"{context} had not returned after 60 s");
            Assert.Equal(0, hook.ExitCode);
            Thread.Sleep(300);
        }
        string outbox = Path.Combine(state, "outbox");
        int queued = Directory.Exists(outbox) ? Directory.GetFiles(outbox, "*.row.json").Length : 0;
        bool written = File.Exists(db) && new FileInfo(db).Length > 0;
        if (why is null)
        {
            Assert.Equal((true, 0), (written, queued));
            Assert.Equal((uint?)0, Alumet.Hpc.Native.Libc.StatLink(db)?.Uid);
            return;
        }
        Assert.Equal((false, 1), (written, queued));
        string said = $"{db}: not used: {why.Replace("{parent}", parent).Replace("{db}", db)}";
        Assert.Contains(said, File.ReadAllText(install.Config.Paths.LogFile));
    }
}
