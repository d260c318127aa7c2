using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Parquet;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sampling;

/// <summary>
/// Raw storage (storage_period_ms = 0): the tick thread and the snapshot (housekeeping, or an epilog's End) each stamp
/// their read before they get the source's gate, so the one that stamped first can read second. The interleavings are
/// replayed here through the real entry points with the stamps each thread would have taken: per series, time only
/// moves forward and the intervals add up to the job's elapsed time.
/// </summary>
public sealed class ReadOrderTests : IDisposable
{
    private const long Ms = 1_000_000;
    private const long Us = 1_000;
    private const long Wall0 = 1_700_000_000_000 * Ms;
    private readonly NodeRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private ulong _package;

    /// <summary>+10 mJ package, +3 mJ core, +1 mJ dram since the previous call (exact integers in µJ).</summary>
    private void Advance()
    {
        _package += 10_000;
        _rig.SetCounters(_package, _package * 3 / 10, _package / 10);
    }

    [Fact]
    public void ATickStampedOnEitherSideOfASnapshotNeverMovesASeriesBackInTime()
    {
        var cfg = _rig.Config(storageMs: 0);
        _rig.SetCounters(0, 0, 0);
        _rig.Proc.SetStat(0, 0);
        _rig.SetJobCpu("42", 0);
        using var node = _rig.NewNode(cfg);
        var slot = _rig.Slot!;
        void Tick(long mono) { Advance(); node.Buffer.Read(slot, mono, Wall0 + mono); }

        node.Register(NodeRig.Job("42"), false, 0, Wall0);
        for (long t = 100; t <= 900; t += 100) Tick(t * Ms);
        // Housekeeping stamped 1000 ms; the tick stamped 40 µs later but got the gate first.
        Tick(1000 * Ms + 40 * Us);
        _rig.Proc.SetStat(50, 0);
        _rig.SetJobCpu("42", 250_000_000);
        node.Snapshot(1000 * Ms, Wall0 + 1000 * Ms);
        // The tick stamped 40 µs before the next snapshot's stamp, and read after it.
        for (long t = 1100; t <= 1900; t += 100) Tick(t * Ms);
        Advance();
        _rig.Proc.SetStat(100, 0);
        _rig.SetJobCpu("42", 500_000_000);
        node.Snapshot(2000 * Ms, Wall0 + 2000 * Ms);
        Tick(2000 * Ms - 40 * Us);
        for (long t = 2100; t <= 2400; t += 100) Tick(t * Ms);
        // The epilog stamped its End at 2500 ms; a tick stamped 20 µs later got the gate first.
        Tick(2500 * Ms + 20 * Us);
        _rig.Proc.SetStat(150, 0);
        _rig.SetJobCpu("42", 750_000_000);
        var end = node.End(NodeRig.Job("42").Key, true, "", 2500 * Ms, Wall0 + 2500 * Ms)!;
        Advance();
        node.Close(2600 * Ms, Wall0 + 2600 * Ms);

        string jobFile = end.ParquetPath;
        string nodeFile = Directory.GetFiles(cfg.Paths.DataDir, "node1.*.parquet", SearchOption.AllDirectories).Single();
        long jobEndNs = 2500 * Ms + 20 * Us; // the period closed at the latest read, the tick's

        var jobSeries = Series(jobFile);
        Assert.Equal(new[] { "job:42", "node", "unattributed" }, jobSeries.Keys.Select(k => k.Consumer).Distinct().Order().ToArray());
        foreach (var (key, rows) in jobSeries) AssertForward(key, rows, jobEndNs);
        // The package's 26 steps up to the job's end, exactly (the read that lost the race is in the next one's delta).
        Assert.Equal(260_000, jobSeries[("node", "cpu_package:0")].Sum(r => r.Raw));

        foreach (var (key, rows) in Series(nodeFile))
            AssertForward(key, rows, key.Consumer == "job:42" ? jobEndNs : 2600 * Ms);
        Assert.Equal(jobEndNs / 1e9, end.Record!.ElapsedS, 9);

        // Per counter: the job's periods to 1 s, 2 s and its end; the node's, and the one its Close ended.
        Conservation.AssertEveryInterval(jobFile, 3 * 3);
        Conservation.AssertEveryInterval(nodeFile, 4 * 3);
    }

    /// <summary>
    /// NVML is polled on a thread of its own (README "Timing"), which also stamps its read before it gets the source's
    /// gate: a GPU read stamped just after the snapshot's instant can take the gate first, one stamped just before can take
    /// it after. The snapshot took the totals the first one had read (and left the second to the next period) but closed
    /// the period at its own instant, so that read's raw record fell in the other period: the GPU domain broke node = Σ
    /// jobs + unattributed in all three periods, in the job's file and in the node file, though no energy was lost.
    /// </summary>
    [Fact]
    public void AGpuReadStampedOnEitherSideOfASnapshotIsInThePeriodWhoseSplitCountedIt()
    {
        var cfg = _rig.Config(storageMs: 0);
        _rig.AtZero();
        using var node = _rig.NewNodeWithGpu(cfg);
        void Tick(long ms) { Advance(); node.Buffer.Read(_rig.Slot!, ms * Ms, Wall0 + ms * Ms); }
        void Gpu(long ms) { _rig.Nvml!.Set("e0", (ulong)ms * 100); node.Buffer.Read(_rig.Gpu!, ms * Ms, Wall0 + ms * Ms); } // 100 W: 100 mJ a ms
        void Run(long from, long to, long lastGpu)
        {
            for (long t = from; t <= to; t += 50)
            {
                if (t % 100 == 0) Tick(t);
                if (t % 250 == 0 && t <= lastGpu) Gpu(t);
            }
        }

        node.Register(NodeRig.Job("42", exclusive: true), false, 0, Wall0);
        Run(50, 1000, 750);
        Gpu(1001); // stamped 1 ms after the housekeeping's 1000 ms, and got the gate first
        node.Snapshot(1000 * Ms, Wall0 + 1000 * Ms);
        Run(1050, 2000, 1750);
        node.Snapshot(2000 * Ms, Wall0 + 2000 * Ms);
        Gpu(1999); // stamped 1 ms before the housekeeping's 2000 ms, and got the gate after the snapshot
        Run(2050, 2500, 2250);
        var end = node.End(NodeRig.Job("42").Key, true, "", 2500 * Ms, Wall0 + 2500 * Ms)!;
        node.Close(2600 * Ms, Wall0 + 2600 * Ms);

        string jobFile = end.ParquetPath;
        string nodeFile = Directory.GetFiles(cfg.Paths.DataDir, "node1.*.parquet", SearchOption.AllDirectories).Single();
        // Per counter (package, cores, DRAM, GPU): the job's periods to 1 s, 2 s and its end; the node's, and the one its Close ended.
        Conservation.AssertEveryInterval(jobFile, 3 * 4);
        Conservation.AssertEveryInterval(nodeFile, 4 * 4);
        const string Domain = "gpu:0000:3b:00.0";
        // The first period ends at the GPU's read (1001 ms); the read stamped 1999 ms is refused, its energy read at 2250 ms.
        var jobSeries = Series(jobFile);
        Assert.Equal(new long[] { 100_100, 74_900, 50_000 }, jobSeries[("job:42", Domain)].Select(r => r.Raw));
        Assert.Equal(new[] { 1001L, 2000, 2500 }, jobSeries[("job:42", Domain)].Select(r => (r.EndUs - Wall0 / 1000) / 1000));
        Assert.Equal(225.0, end.Record!.Energy.GpuJ, 12); // every mJ the GPU counted, once
    }

    private static void AssertForward((string Consumer, string Domain) key, List<(long EndUs, long IntervalUs, long Raw, int Flags)> rows, long totalNs)
    {
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.True(rows[i].IntervalUs > 0 || rows[i].IntervalUs == 0 && rows[i].Flags != 0,
                $"{key}: row {i} has interval {rows[i].IntervalUs} µs");
            if (i > 0) Assert.True(rows[i].EndUs > rows[i - 1].EndUs, $"{key}: row {i} ends at {rows[i].EndUs} µs, not after {rows[i - 1].EndUs} µs");
        }
        Assert.Equal(totalNs / 1000, rows.Sum(r => r.IntervalUs));
    }

    internal static Dictionary<(string Consumer, string Domain), List<(long EndUs, long IntervalUs, long Raw, int Flags)>> Series(string file)
    {
        var series = new Dictionary<(string, string), List<(long, long, long, int)>>();
        foreach (var g in ParquetRows.ReadAsync(file, noFollow: false).ToBlockingEnumerable())
            for (int i = 0; i < g.Count; i++)
            {
                var key = (g.Consumer[i], g.Domain(i));
                if (!series.TryGetValue(key, out var rows)) series[key] = rows = [];
                rows.Add((g.EndUs[i], g.IntervalUs[i], g.EnergyRaw![i], g.Flags[i]));
            }
        return series;
    }
}
