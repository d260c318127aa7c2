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
        File.WriteAllText(fake, $$"""
            #!/bin/sh
            printf '%s\n' "$@" > '{{args}}.tmp' && mv '{{args}}.tmp' '{{args}}'
            i=0; while [ ! -e '{{release}}' ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
            echo '{"Status":"","Reason":"","ParquetPath":"/written","Stored":true,"Delivery":"","Error":null}'
            """);
        File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
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

    private static long NodeSamplerTestsRows(string dir) =>
        Alumet.Hpc.Tests.Sampling.NodeSamplerTests.Rows(dir).Where(x => x.Consumer == "node" && x.Resource == "cpu_package:0").Sum(x => x.R.Value);
}
