using Alumet.Hpc.Jobs;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Spool;

/// <summary>
/// The day's node file is written when the UTC day rolls (and at exit), by the node daemon's <c>finalize-job</c> child on
/// a thread of its own: never in the daemon (the Parquet writer and its compressor would be in its binary and its peak
/// memory) and never under the sampler's locks (the snapshot that rolled the day used to export the whole day while
/// holding the spool lock that every raw tick takes: seconds at 1 s storage, minutes at raw).
/// </summary>
public sealed class NodeFileExportTests : IDisposable
{
    private const long Ms = 1_000_000;
    private const long Day = 86_400_000 * Ms;
    private readonly NodeRig _rig = new();
    private readonly TempTree _child = new("child");

    public void Dispose()
    {
        File.WriteAllText(_child.PathOf("release"), "");
        _rig.Dispose();
        _child.Dispose();
    }

    /// <summary>A stand-in <c>alumet-hpc</c> that records its arguments, then holds until released, then answers.</summary>
    private string HeldChild()
    {
        string fake = _child.PathOf("alumet-hpc"), args = _child.PathOf("args"), release = _child.PathOf("release");
        Executables.Write(fake, $$"""
            #!/bin/sh
            printf '%s\n' "$@" > '{{args}}.tmp' && mv '{{args}}.tmp' '{{args}}'
            i=0; while [ ! -e '{{release}}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
            echo '{"Status":"","Reason":"","ParquetPath":"/written","Stored":true,"Delivery":"","Error":null}'
            """, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return fake;
    }

    [Fact]
    public void TheDaysNodeFileIsWrittenByTheChildWhileTheTickAndTheSnapshotsGoOn()
    {
        long wall0 = 20_000 * Day - 500 * Ms; // 0.5 s before a UTC midnight
        // Raw storage: every tick takes the spool lock.
        var node = _rig.RawNodeWithJob42(wall0, out var cfg, finalization: new FinalizerProcess(HeldChild(), null));
        _rig.SetCounters(400, 40, 4);
        Assert.True(node.Buffer.Read(_rig.Slot!, 400 * Ms, wall0 + 400 * Ms));
        node.Snapshot(400 * Ms, wall0 + 400 * Ms);
        _rig.SetCounters(1000, 100, 10);
        node.Snapshot(1000 * Ms, wall0 + 1000 * Ms); // the first period of the new day: the old day is closed

        string args = _child.PathOf("args");
        for (int i = 0; i < 200 && !File.Exists(args); i++) Thread.Sleep(50);
        Assert.True(File.Exists(args), "no finalize-job child was started for the closed day");
        string oldDay = Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory, "2024-10-03");
        Assert.Equal(["finalize-job", "--node-day", oldDay], File.ReadAllLines(args));

        // The child still holds: the tick and the next period go on, in the new day's spool.
        _rig.SetCounters(1100, 110, 11);
        Assert.True(node.Buffer.Read(_rig.Slot!, 1100 * Ms, wall0 + 1100 * Ms));
        node.Snapshot(1200 * Ms, wall0 + 1200 * Ms);
        node.Flush();
        Assert.False(File.Exists(_child.PathOf("release")));
        var newDay = NodeSamplerTestsRows(Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory, "2024-10-04"));
        Assert.Equal(100, newDay); // the new day's node reads: 1000 -> 1100, then the 1.2 s snapshot's (nothing more)

        File.WriteAllText(_child.PathOf("release"), "");
        node.Close(1200 * Ms, wall0 + 1200 * Ms); // waits for both days' children
        Assert.Equal(["finalize-job", "--node-day", Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory, "2024-10-04")], File.ReadAllLines(args));
        node.Dispose();
    }

    /// <summary>
    /// The node daemon exports again the closed days whose node file does not hold them: at its first housekeeping, then
    /// once an hour (its monotonic clock), never in between; each failed attempt adds a line to the day's mark, which the
    /// export that works removes.
    /// </summary>
    [Fact]
    public void TheNodeSamplerExportsAClosedDayAgainAtItsStartThenEveryHour()
    {
        const long Hour = 3_600_000 * Ms;
        var cfg = _rig.Config();
        var node = _rig.NewNode(cfg, retryDayExports: true);
        var now = DateTime.UtcNow;
        string day = Alumet.Hpc.Tests.Jobs.FinalizationTests.NodeDay(cfg, DateOnly.FromDateTime(now).AddDays(-2), now.AddDays(-2), Alumet.Hpc.Tests.Jobs.FinalizationTests.Blocked);
        string blocked = Path.Combine(cfg.Paths.DataDir, Alumet.Hpc.Tests.Jobs.FinalizationTests.Blocked);
        Directory.CreateDirectory(cfg.Paths.DataDir);
        File.WriteAllText(blocked, "not a directory");
        string mark = Path.Combine(day, NodeSpool.ExportFailedFile);
        int Attempts() => File.Exists(mark) ? File.ReadAllLines(mark).Length : 0;
        void WaitFor(Func<bool> done, string what) => Alumet.Hpc.Tests.Commands.ExecBinaryTests.WaitFor(done, what);

        // Each housekeeping at the given time (one that finds the last attempt's thread still ending tries again at the next).
        bool At(long now, Func<bool> done)
        {
            node.Housekeep(now);
            return done();
        }
        WaitFor(() => At(1 * Ms, () => Attempts() == 1), "the first attempt, at the first housekeeping");
        node.Housekeep(Hour); // 59 min 59.999 s later: not yet
        WaitFor(() => At(Hour + 1 * Ms, () => Attempts() == 2), "the second attempt, an hour later");
        Thread.Sleep(300);
        Assert.Equal(2, Attempts());

        File.Delete(blocked);
        string file = NodeSpool.ParquetPath(cfg, Alumet.Hpc.Tests.Jobs.FinalizationTests.Blocked, "n1", Path.GetFileName(day));
        WaitFor(() => At(2 * Hour + 1 * Ms, () => NodeSpool.ExportedTo(day) == file), "the day's export");
        WaitFor(() => !File.Exists(mark), "the mark of the failed attempts removed");
        node.Dispose();
    }

    private static long NodeSamplerTestsRows(string dir) =>
        Alumet.Hpc.Tests.Sampling.NodeSamplerTests.Rows(dir).Where(x => x.Consumer == "node" && x.Resource == "cpu_package:0").Sum(x => x.R.Value);
}
