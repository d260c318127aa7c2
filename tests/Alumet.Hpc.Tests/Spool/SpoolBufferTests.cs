using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Sampling;

namespace Alumet.Hpc.Tests.Spool;

/// <summary>
/// A spool's buffer is written when it holds <see cref="SpoolWriter.WriteBytes"/> as well as every flush interval, so its
/// memory no longer grows with read rate × flush interval (README Performance, peak RSS); and never in the middle of a
/// period's split. Through the node sampler's real entry points at raw storage: the tick's reads, Snapshot, Flush.
/// </summary>
public sealed class SpoolBufferTests : IDisposable
{
    private const long Ms = 1_000_000;
    private const long Wall0 = 1_700_000_000_000 * Ms;
    private const int Channels = 3; // the rig's package, cores, dram
    private readonly NodeRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private static long RecordsIn(string dir) => new FileInfo(Path.Combine(dir, SpoolWriter.RecordsFile)).Length / SpoolRecord.Size;

    /// <summary>
    /// One job alone at raw storage: every read goes to the node's spool, 3 records per tick, and nowhere else (the job's
    /// file gets them from there at its end: NodeReadWindows; its spool.bin holds its splits only, and reads as the node's).
    /// The buffer used to hold a whole flush interval (~190 KB a second on a 2-socket node, in each spool that had taken
    /// raw reads); now it is written every 512 records, before any flush, and the flush writes the rest.
    /// </summary>
    [Fact]
    public void AtRawStorageEachSpoolIsWrittenEvery16KiBNotOnlyAtTheFlush()
    {
        using var node = _rig.RawNodeWithJob42(Wall0, out var cfg);
        var slot = _rig.Slot!;
        void Ticks(long from, long to)
        {
            for (long t = from; t <= to; t++)
            {
                _rig.SetCounters((ulong)t * 1_000, (ulong)t * 600, (ulong)t * 100); // 1 W of package
                Assert.True(node.Buffer.Read(slot, t * Ms, Wall0 + t * Ms));
            }
        }
        Ticks(1, 10);
        node.Flush(); // 30 records
        string nodeDir = Directory.GetDirectories(Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory)).Single();
        string jobDir = NodeRig.Job("42").Job.StateDirectory(cfg.Paths.StateDir);
        Ticks(11, 1010);
        // 30 + 3000 records in the node's: written at the 513th, 1025th, ... 2561st append; 440 (14 KB) still in memory.
        // None in the job's: the tick stores each read once.
        Assert.Equal((30L + 2560, 0L), (RecordsIn(nodeDir), RecordsIn(jobDir)));

        _rig.Proc.SetStat(101, 0);
        _rig.SetJobCpu("42", 1_010_000_000); // the job used the node's whole busy time: its share is the node's energy
        node.Snapshot(1010 * Ms, Wall0 + 1010 * Ms);
        node.Flush();
        // + the split of the period: the job's share and unattributed per channel (raw: no node row at the snapshot).
        Assert.Equal((3036L, 6L), (RecordsIn(nodeDir), RecordsIn(jobDir)));
        var sums = NodeSamplerTests.Sums(nodeDir);
        Assert.Equal((1_010_000, 1_010_000, 0), (sums[("node", "cpu_package:0")], sums[("job:42", "cpu_package:0")], sums[("unattributed", "cpu_package:0")]));
        Assert.Equal(NodeSamplerTests.Sums(jobDir), sums);

        // Job 43 joins: the period it closes is job 42's alone; the next one is split between both and adds job 43's
        // series to the node's spool. The next 16 KiB write writes meta.json first, then the records that name them.
        _rig.SetJobCpu("43", 0);
        Ticks(1011, 1015);
        node.Register(NodeRig.Job("43"), false, 1015 * Ms, Wall0 + 1015 * Ms); // 15 reads + 6 rows
        Ticks(1016, 1020);                                                       // 15 reads
        node.Snapshot(1020 * Ms, Wall0 + 1020 * Ms);                             // 9 rows, 3 of them in new series
        Ticks(1021, 1320);                                                       // 900 reads: the buffer passes 16 KiB
        Assert.Equal(3036L + 512, RecordsIn(nodeDir));
        int listed = SpoolWriter.ReadMeta(nodeDir).Series.Count;
        Assert.Equal(12, listed); // node, job:42, unattributed and job:43, per channel
        Assert.All(Alumet.Hpc.Spool.SpoolReader.ReadAll(nodeDir), r => Assert.InRange(r.Series, 0, listed - 1));
        node.Flush();
        Assert.Equal(3036L + 15 + 6 + 15 + 9 + 900, RecordsIn(nodeDir));
        node.Close(1320 * Ms, Wall0 + 1320 * Ms);
    }

    /// <summary>
    /// A snapshot whose split does not fit in what is left of a buffer writes the buffer first: a write in the middle
    /// of the split would leave in the file the node's energy without all its parts, an interval that does not conserve
    /// if the sampler is killed before its next flush.
    /// </summary>
    [Fact]
    public void APeriodsSplitIsNeverWrittenHalfWay()
    {
        using var node = _rig.RawNodeWithJob42(Wall0, out var cfg);
        var slot = _rig.Slot!;
        void Tick(long t)
        {
            _rig.SetCounters((ulong)t * 1_000, (ulong)t * 600, (ulong)t * 100);
            node.Buffer.Read(slot, t * Ms, Wall0 + t * Ms);
        }
        void Split(long t)
        {
            _rig.SetCounters((ulong)t * 1_000, (ulong)t * 600, (ulong)t * 100);
            _rig.Proc.SetStat((ulong)t / 10, 0);
            _rig.SetJobCpu("42", (ulong)t * 1_000_000);
            node.Snapshot(t * Ms, Wall0 + t * Ms);
        }
        Tick(1);
        Split(2);   // a first period: every series exists, and is in meta.json after the flush
        node.Flush(); // 6 reads + 6 rows
        for (long t = 3; t <= 170; t++) Tick(t);
        // The snapshot reads once more (507 records in each buffer), then splits: 6 rows that do not fit in the 5 left.
        Split(171);
        // Killed here, before the flush: each file holds the reads, and none of that split.
        string nodeDir = Directory.GetDirectories(Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory)).Single();
        string jobDir = NodeRig.Job("42").Job.StateDirectory(cfg.Paths.StateDir);
        foreach (string dir in new[] { nodeDir, jobDir })
        {
            var rows = NodeSamplerTests.Rows(dir);
            Assert.Equal(12 + 507, rows.Count);
            Assert.All(rows.Skip(12), x => Assert.Equal("node", x.Consumer));
        }
        node.Flush();
        foreach (string dir in new[] { nodeDir, jobDir })
        {
            var sums = NodeSamplerTests.Sums(dir);
            Assert.Equal(171_000, sums[("node", "cpu_package:0")]);
            Assert.Equal(171_000, sums[("job:42", "cpu_package:0")] + sums[("unattributed", "cpu_package:0")]);
        }
        node.Close(171 * Ms, Wall0 + 171 * Ms);
    }

    /// <summary>
    /// A sampler killed mid-period at raw storage leaves reads in the files that no split closed (written with the
    /// 16 KiB buffer before the period ended). The sampler that takes the spools back records them as unattributed:
    /// every interval of every file conserves (what `alumet-hpc parquet check` checks), and nothing read is dropped.
    /// </summary>
    [Fact]
    public void AKilledSamplersUnsplitReadsAreRecordedAsUnattributedByTheNextOne()
    {
        var first = _rig.RawNodeWithJob42(Wall0, out var cfg);
        for (long t = 1; t <= 300; t++)
        {
            _rig.SetCounters((ulong)t * 1_000, (ulong)t * 600, (ulong)t * 100);
            first.Buffer.Read(_rig.Slot!, t * Ms, Wall0 + t * Ms);
            if (t == 1) first.Flush(); // the series reach meta.json
        }
        // Killed at 300 ms, before its first snapshot: 3 + 512 of the 900 records were written (ticks 1-171, and the
        // package and cores of tick 172), none of them split.

        var recovered = Assert.Single(Alumet.Hpc.Jobs.NodeSampler.Unfinished(cfg.Paths.StateDir));
        using var second = _rig.NewNode(cfg); // primed at 300 ms's counters
        second.Register(recovered, recovered: true, 0, Wall0 + 400 * Ms);
        _rig.SetCounters(400_000, 240_000, 40_000);
        _rig.Proc.SetStat(10, 0);
        _rig.SetJobCpu("42", 50_000_000); // half of the node's busy 100 ms
        second.Snapshot(100 * Ms, Wall0 + 500 * Ms);
        var outcome = second.End(recovered.Key, true, "", 100 * Ms, Wall0 + 500 * Ms)!;
        second.Close(100 * Ms, Wall0 + 500 * Ms);

        Assert.Equal("partial", outcome.Status);
        Assert.Equal(0.05, outcome.Record!.Energy.PackageJ, 12); // its half of the period after the restart
        string nodeFile = Directory.GetFiles(cfg.Paths.DataDir, "*.parquet", SearchOption.AllDirectories).Single(f => f.Contains("/node/"));
        // Each: the killed sampler's reads, and the period after the restart, per counter.
        Conservation.AssertEveryInterval(outcome.ParquetPath, 2 * 3);
        Conservation.AssertEveryInterval(nodeFile, 2 * 3);
        string nodeDir = Directory.GetDirectories(Path.Combine(cfg.Paths.StateDir, Alumet.Hpc.Spool.NodeSpool.Directory)).Single();
        var sums = NodeSamplerTests.Sums(nodeDir);
        Assert.Equal((172_000 + 100_000, 50_000, 172_000 + 50_000),
            (sums[("node", "cpu_package:0")], sums[("job:42", "cpu_package:0")], sums[("unattributed", "cpu_package:0")]));
        Assert.Equal((103_200 + 60_000, 17_100 + 10_000),
            (sums[("node", "cpu_cores:0")], sums[("node", "dram:0")]));
    }
}
