using Alumet.Hpc.Jobs;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Sampling;

namespace Alumet.Hpc.Tests.Spool;

/// <summary>
/// At raw storage a spool holds every node read and, at each snapshot, that period's split. A flush between two
/// snapshots (flush_interval_ms is the admin's, 10-5000 ms, independent of the period) writes reads that no split
/// covers yet; a sampler killed then leaves them in the job's and the node's files. Whoever takes such a spool over —
/// the epilog that finalizes the job from it, or the next sampler that recovers it — records them as unattributed at
/// the last read's time, so that every interval of every file keeps node = Σ jobs + unattributed and nothing read is
/// dropped. Through the real entry points: the tick's reads, Snapshot, Flush, the epilog's StopAndFinalize, recovery.
/// </summary>
public sealed class UnsplitReadsTests : IDisposable
{
    private const long Ms = 1_000_000;
    private const long Wall0 = 1_700_000_000_000 * Ms;
    private readonly NodeRig _rig = new();

    public void Dispose() => _rig.Dispose();

    /// <summary>
    /// Job 42 alone and exclusive, 1 W of package: one period split at 1 s, then 200 ms of reads written by the 300 ms
    /// flush (at 1.2 s), then kill -9. Returns the killed sampler's config.
    /// </summary>
    private Alumet.Hpc.Config.AlumetConfig KilledMidPeriod()
    {
        var node = _rig.RawNodeWithJob42(Wall0, out var cfg, exclusive: true, flushIntervalMs: 300);
        for (long t = 1; t <= 1200; t++)
        {
            _rig.SetCounters((ulong)t * 1_000, (ulong)t * 600, (ulong)t * 100);
            Assert.True(node.Buffer.Read(_rig.Slot!, t * Ms, Wall0 + t * Ms));
            if (t == 1000) node.Snapshot(t * Ms, Wall0 + t * Ms);
            if (t % 300 == 0) node.Flush(); // the sampler's flush every flush_interval_ms
        }
        // Killed at 1.2 s, right after a flush: no Close, no End.
        return cfg;
    }

    private static string JobDir(Alumet.Hpc.Config.AlumetConfig cfg) => NodeRig.Job("42").Job.StateDirectory(cfg.Paths.StateDir);

    [Fact]
    public void TheEpilogThatFinalizesAKilledSamplersJobRecordsItsUnsplitReadsAsUnattributed()
    {
        var cfg = KilledMidPeriod();
        // 3 counters × (1200 reads + the split's share and unattributed), all flushed.
        Assert.Equal(3 * (1200 + 2), NodeSamplerTests.Rows(JobDir(cfg)).Count);

        var stop = SamplerLauncher.StopAndFinalize(NodeRig.Job("42").Job, cfg);

        Assert.Equal("partial", stop.Status);
        using var db = Alumet.Hpc.Outputs.Accounting.AccountingDb.OpenReadOnly(cfg.Paths.Database);
        var row = Assert.Single(db.GetJob("42"));
        Assert.Equal(1.0, row.Energy.PackageJ, 12);   // its split period; the 0.2 J nobody split is not the job's
        string parquet = Directory.GetFiles(cfg.Paths.DataDir, "*.parquet", SearchOption.AllDirectories).Single();
        Conservation.AssertEveryInterval(parquet, 2 * 3); // the split period and the closed reads, per counter
    }

    /// <summary>
    /// A job that ends while the admin has paused the sampler (ctl pause): no period closes then, so its share since the
    /// pause is unknown. Its row said `complete` and its file ended in reads no split covered. The pause closes the period
    /// (since 2026-12-03, NodeSampler.Pause): its reads up to the pause are split, 1.2 J.
    /// </summary>
    [Fact]
    public void AJobThatEndsWhileTheSamplerIsPausedIsPartialAndItsFileConserves()
    {
        var node = _rig.RawNodeWithJob42(Wall0, out _, exclusive: true);
        for (long t = 1; t <= 1200; t++)
        {
            _rig.SetCounters((ulong)t * 1_000, (ulong)t * 600, (ulong)t * 100);
            Assert.True(node.Buffer.Read(_rig.Slot!, t * Ms, Wall0 + t * Ms));
            if (t == 1000) node.Snapshot(t * Ms, Wall0 + t * Ms);
        }
        node.Pause(1200 * Ms, Wall0 + 1200 * Ms); // ctl pause at 1.2 s: the period closes, then no reads, no rows
        var outcome = node.End(NodeRig.Job("42").Key, true, "", 1500 * Ms, Wall0 + 1500 * Ms)!;
        node.Close(1500 * Ms, Wall0 + 1500 * Ms);

        Assert.Equal("partial", outcome.Status);
        Assert.Contains("the job ended while the node sampler was paused (ctl pause)", outcome.Reason);
        Assert.Equal(1.2, outcome.Record!.Energy.PackageJ, 12);
        Conservation.AssertEveryInterval(outcome.ParquetPath, 2 * 3); // the two split periods: no read left unsplit
    }

    [Fact]
    public void TheSamplerThatRecoversAKilledOnesJobRecordsItsUnsplitReadsAsUnattributed()
    {
        var cfg = KilledMidPeriod();
        var recovered = Assert.Single(NodeSampler.Unfinished(cfg.Paths.StateDir));
        using var second = _rig.NewNode(cfg); // primed at 1.2 s's counters
        second.Register(recovered, recovered: true, 0, Wall0 + 1300 * Ms);
        _rig.SetCounters(1_300_000, 780_000, 130_000);
        second.Snapshot(100 * Ms, Wall0 + 1300 * Ms);
        var outcome = second.End(recovered.Key, true, "", 100 * Ms, Wall0 + 1300 * Ms)!;
        second.Close(100 * Ms, Wall0 + 1300 * Ms);

        Assert.Equal("partial", outcome.Status);
        Assert.Equal(1.0 + 0.1, outcome.Record!.Energy.PackageJ, 12); // before the kill + after the restart
        string nodeFile = Directory.GetFiles(cfg.Paths.DataDir, "*.parquet", SearchOption.AllDirectories).Single(f => f.Contains("/node/"));
        Conservation.AssertEveryInterval(outcome.ParquetPath, 3 * 3);
        Conservation.AssertEveryInterval(nodeFile, 3 * 3);
        string nodeDir = Directory.GetDirectories(Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory)).Single();
        var sums = NodeSamplerTests.Sums(nodeDir);
        Assert.Equal((1_300_000, 1_100_000, 200_000),
            (sums[("node", "cpu_package:0")], sums[("job:42", "cpu_package:0")], sums[("unattributed", "cpu_package:0")]));
    }
}
