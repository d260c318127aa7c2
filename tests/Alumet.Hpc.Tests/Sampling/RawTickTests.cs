using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sampling;

/// <summary>
/// The raw-storage tick (storage_period_ms = 0, 1 kHz): what the tick thread calls, <c>MeasurementBuffer.Read</c> with the
/// node sampler as raw sink, allocates nothing once the series exist, with one job or sixteen sharing the node (their
/// shares are split at the snapshots, never per tick). Counted in bytes, not timed.
/// </summary>
public sealed class RawTickTests : IDisposable
{
    private const long Ms = 1_000_000;
    private const long Wall0 = 1_700_000_000_000 * Ms;
    private readonly NodeRig _rig = new();

    public void Dispose() => _rig.Dispose();

    [Theory]
    [InlineData(1)]
    [InlineData(16)]
    public void ATickAllocatesNothingWhateverTheNumberOfJobs(int jobs)
    {
        var cfg = _rig.Config(storageMs: 0);
        _rig.SetCounters(1_000, 300, 100);
        _rig.Proc.SetStat(0, 0);
        for (int j = 0; j < jobs; j++) _rig.SetJobCpu($"{42 + j}", 0);
        using var node = _rig.NewNode(cfg);
        var slot = _rig.Slot!;
        for (int j = 0; j < jobs; j++) node.Register(NodeRig.Job($"{42 + j}"), false, 0, Wall0);
        for (long w = 1; w <= 10; w++) Assert.True(node.Buffer.Read(slot, w * Ms, Wall0 + w * Ms)); // the series are added here
        node.Flush(); // and reach meta.json here (else at the first 16 KiB write, below: once, not per tick)

        // Up to three batches of 1000 ticks, one of which must allocate nothing: a per-tick allocation shows in every
        // batch (≥ 1000 × its size), while the runtime's one-off work on this thread (a method's tier-up landing
        // mid-batch on a loaded machine: seen twice in a parallel run, 2026-12-01) shows in one batch at most.
        var allocated = new List<long>();
        long t = 11;
        for (int batch = 0; batch < 3 && (allocated.Count == 0 || allocated[^1] != 0); batch++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (long end = t + 1000; t < end; t++) node.Buffer.Read(slot, t * Ms, Wall0 + t * Ms);
            allocated.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.True(allocated[^1] == 0, $"1000 ticks allocated {string.Join(", then ", allocated)} bytes");
        node.Close(t * Ms, Wall0 + t * Ms);
    }

    /// <summary>
    /// The aggregated period (the defaults: one snapshot, flush and liveness check a second) with sixteen busy jobs, each
    /// with a step: what the housekeeping thread calls allocates nothing once the series exist, so the daemon's heap
    /// does not grow with time or jobs (README Performance, peak RSS).
    /// </summary>
    [Fact]
    public void APeriodWithSixteenBusyJobsAllocatesNothing()
    {
        const int Jobs = 16;
        var cfg = _rig.Config(storageMs: 1000);
        _rig.SetCounters(0, 0, 0);
        _rig.Proc.SetStat(0, 0);
        for (int j = 0; j < Jobs; j++) _rig.SetJobCpu($"{42 + j}", 0);
        using var node = _rig.NewNode(cfg);
        for (int j = 0; j < Jobs; j++) node.Register(NodeRig.Job($"{42 + j}"), false, 0, Wall0);
        void Period(long t)
        {
            _rig.SetCounters((ulong)t * 1_000_000, (ulong)t * 600_000, (ulong)t * 100_000);
            _rig.Proc.SetStat((ulong)t * 100, 0);
            for (int j = 0; j < Jobs; j++)
            {
                _rig.SetJobCpu($"{42 + j}", (ulong)t * 50_000_000);
                _rig.Cgroups.SetV1Usage($"cpuacct/slurm/uid_1000/job_{42 + j}/step_0", (ulong)t * 20_000_000);
            }
            long before = GC.GetAllocatedBytesForCurrentThread();
            node.Snapshot(t * 1000 * Ms, Wall0 + t * 1000 * Ms);
            node.Flush();
            Assert.True(node.Housekeep(t * 1000 * Ms));
            _allocated += GC.GetAllocatedBytesForCurrentThread() - before;
        }
        for (long t = 1; t <= 3; t++) Period(t); // the series and the step listings are made here
        _allocated = 0;
        for (long t = 4; t <= 13; t++) Period(t); // the generated files are rewritten outside the measured calls

        Assert.Equal(0, _allocated);
        Assert.Equal(13, node.Snapshots);
        node.Close(14_000 * Ms, Wall0 + 14_000 * Ms);
    }

    private long _allocated;

    /// <summary>
    /// The daemon compacts its heap once a burst of registrations or ends is over (the job set unchanged for one
    /// housekeeping round), never per period: what the prologs left is given back instead of staying resident.
    /// </summary>
    [Fact]
    public void TheDaemonCompactsOnceAfterABurstOfJobChangesAndNeverPerPeriod()
    {
        var cfg = _rig.Config(storageMs: 1000);
        _rig.SetCounters(0, 0, 0);
        for (int j = 0; j < 3; j++) _rig.SetJobCpu($"{42 + j}", 0);
        using var node = _rig.NewNode(cfg);
        node.CompactAfterJobChanges = true;
        Assert.True(node.Housekeep(1000 * Ms));
        for (int j = 0; j < 3; j++) node.Register(NodeRig.Job($"{42 + j}"), false, 1000 * Ms, Wall0);
        Assert.True(node.Housekeep(2000 * Ms)); // sees the change
        Assert.Equal(0, node.Compactions);
        Assert.True(node.Housekeep(3000 * Ms)); // a round without change: the burst is over
        Assert.Equal(1, node.Compactions);
        for (long t = 4; t <= 10; t++) Assert.True(node.Housekeep(t * 1000 * Ms));
        Assert.Equal(1, node.Compactions);
        node.End(NodeRig.Job("42").Key, true, "", 11_000 * Ms, Wall0 + 11_000 * Ms);
        Assert.True(node.Housekeep(12_000 * Ms));
        Assert.Equal(1, node.Compactions);
        Assert.True(node.Housekeep(13_000 * Ms));
        Assert.True(node.Housekeep(14_000 * Ms));
        Assert.Equal(2, node.Compactions);
        node.Close(15_000 * Ms, Wall0 + 15_000 * Ms);
    }
}
