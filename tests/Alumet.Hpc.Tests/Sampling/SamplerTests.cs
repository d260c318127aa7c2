using Alumet.Hpc.Attribution;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Sources.Rapl;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sampling;

/// <summary>The sampler driven by hand over generated counters: every stored number is known in advance.</summary>
public class SamplerTests : IDisposable
{
    private const long Ms = 1_000_000;
    private readonly PowercapTree _powercap = PowercapTree.Standard(1, maxRange: 999_999); // wraps at 1 J
    private readonly ProcTree _proc = new();
    private readonly CgroupTree _cgroups = new();
    private readonly TempTree _state = new("state");
    private readonly JobIdentity _job = new("slurm", "test", "42", "alice", 1000, "node1");

    public void Dispose()
    {
        _powercap.Dispose(); _proc.Dispose(); _cgroups.Dispose(); _state.Dispose();
    }

    private Sampler NewSampler(SamplerSettings settings, JobAttribution? attribution)
    {
        var rapl = new RaplSource(PowercapDiscovery.Discover(_powercap.Root).Zones);
        var slot = new SourceSlot(rapl, 1000, ownThread: false, maxPowerW: settings.MaxPowerW);
        var meta = new SpoolMeta { JobId = _job.JobId, Node = _job.Node, Scheduler = _job.Scheduler };
        return new Sampler(settings, new[] { slot }, attribution, meta, _state.Root, startMonotonicNs: 0);
    }

    private void SetCounters(ulong package, ulong core, ulong dram)
    {
        _powercap.SetEnergy("intel-rapl:0", package);
        _powercap.SetEnergy("intel-rapl:0:0", core);
        _powercap.SetEnergy("intel-rapl:0:1", dram);
    }

    private Dictionary<(string Consumer, string Resource), long> Sums(Func<SpoolRecord, bool>? where = null)
    {
        var meta = SpoolWriter.ReadMeta(_state.Root);
        return SpoolReader.ReadAll(_state.Root).Where(where ?? (_ => true))
            .GroupBy(r => (meta.Series[r.Series].Consumer, $"{meta.Series[r.Series].ResourceKind}:{meta.Series[r.Series].ResourceId}"))
            .ToDictionary(g => g.Key, g => g.Sum(r => r.Value));
    }

    [Fact]
    public void AggregatedStorageKeepsExactEnergyAcrossAWrap()
    {
        // ≤ 1 W on a 1 J counter: reads up to 1 s apart can hold at most one wrap.
        var s = NewSampler(new SamplerSettings(1000, 1000, 1000, MaxPowerW: 1), attribution: null);
        SetCounters(999_000, 500, 10);
        s.ReadSources(0, 1_000 * Ms);
        SetCounters(999_900, 700, 20);
        s.ReadSources(100 * Ms, 1_100 * Ms);
        SetCounters(400, 900, 30);                // package wrapped: 100 + 400 = 500 µJ
        s.ReadSources(200 * Ms, 1_200 * Ms);
        s.Store(1000 * Ms, 2_000 * Ms);
        SetCounters(1_400, 1_000, 30);
        s.ReadSources(1100 * Ms, 2_100 * Ms);
        s.Complete(StopReason.Signal, null, 1500 * Ms, 2_500 * Ms);

        var records = SpoolReader.ReadAll(_state.Root).ToList();
        Assert.Equal(6, records.Count); // 3 channels × 2 periods
        Assert.Equal(new long[] { 1_400, 400, 20, 1_000, 100, 0 }, records.Select(r => r.Value));
        Assert.Equal(new long[] { 1000 * Ms, 1000 * Ms, 1000 * Ms, 500 * Ms, 500 * Ms, 500 * Ms }, records.Select(r => r.IntervalNs));
        Assert.All(records, r => Assert.Equal(SpoolFlags.None, r.Flags));
        Assert.Equal(2_500 * Ms, records[^1].WallNs);
    }

    [Fact]
    public void RawStorageWritesEveryReadAndFlagsAnAmbiguousWrap()
    {
        // 5 W max and a 1 J counter: a gap of ≥ 200 ms could hide a second wrap.
        var s = NewSampler(new SamplerSettings(0, 1000, 1000, MaxPowerW: 5), attribution: null);
        SetCounters(900_000, 0, 0);
        s.ReadSources(0, 0);
        SetCounters(950_000, 0, 0);
        s.ReadSources(1 * Ms, 1 * Ms);
        SetCounters(50_000, 0, 0);                 // wrap after a 300 ms stall: 100_000 µJ at least
        s.ReadSources(301 * Ms, 301 * Ms);
        s.Complete(StopReason.Signal, null, 301 * Ms, 301 * Ms);

        var package = SpoolReader.ReadAll(_state.Root).Where(r => r.Series == 0).ToList();
        // Raw: one record per read after the priming one, plus the final read in Complete (nothing new: 0).
        Assert.Equal(new long[] { 50_000, 100_000 }, package.Take(2).Select(r => r.Value));
        Assert.Equal(SpoolFlags.None, package[0].Flags);
        Assert.Equal(SpoolFlags.WrapAmbiguous, package[1].Flags);
    }

    [Fact]
    public void SharedNodeEnergyIsSplitByCgroupCpuTimeAndConserved()
    {
        string parent = _cgroups.PathOf("cpuacct", "slurm", "uid_1000");
        var locator = new DirectoryJobLocator(parent, CgroupVersion.V1);
        using var attribution = new JobAttribution(_job, locator, _proc.Root, exclusive: false, new HashSet<string>());
        var s = NewSampler(new SamplerSettings(1000, 1000, 1000, MaxPowerW: 1000), attribution);

        SetCounters(0, 0, 0);
        _proc.SetStat(busyTicks: 0, idleTicks: 0);
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_42", 0);
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_43", 0);
        s.ReadSources(0, 0);
        s.Attribute(0, 0); // primes CPU counters

        // One second: node busy 1.0 s (100 ticks); job 42 used 0.6 s, job 43 0.3 s; 0.1 s system.
        SetCounters(900_000, 600_000, 300_001);
        _proc.SetStat(100, 100);
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_42", 600_000_000);
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_43", 300_000_000);
        s.ReadSources(1000 * Ms, 1000 * Ms);
        s.Attribute(1000 * Ms, 1000 * Ms);
        s.Complete(StopReason.Signal, null, 1000 * Ms, 1000 * Ms);

        var sums = Sums();
        Assert.Equal(540_000, sums[("job:42", "cpu_package:0")]);
        Assert.Equal(270_000, sums[("other_jobs", "cpu_package:0")]);
        Assert.Equal(90_000, sums[("unattributed", "cpu_package:0")]);
        Assert.Equal(180_000, sums[("job:42", "dram:0")]);     // floor(300_001 × 0.6)
        Assert.Equal(90_000, sums[("other_jobs", "dram:0")]);  // floor(300_001 × 0.3)
        Assert.Equal(30_001, sums[("unattributed", "dram:0")]); // the remainder, never lost
        foreach (var resource in new[] { "cpu_package:0", "cpu_cores:0", "dram:0" })
            Assert.Equal(sums[("node", resource)],
                sums[("job:42", resource)] + sums[("other_jobs", resource)] + sums[("unattributed", resource)]);
    }

    [Fact]
    public void StepsGetTheirPartOfTheJobShareAndAreNotAddedToIt()
    {
        string parent = _cgroups.PathOf("cpuacct", "slurm", "uid_1000");
        using var attribution = new JobAttribution(_job, new DirectoryJobLocator(parent, CgroupVersion.V1), _proc.Root, false, new HashSet<string>());
        var s = NewSampler(new SamplerSettings(1000, 1000, 1000, MaxPowerW: 1000), attribution);
        SetCounters(0, 0, 0);
        _proc.SetStat(0, 0);
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_42", 0);
        s.ReadSources(0, 0);
        s.Attribute(0, 0);

        // The batch step appears during the period; job 42: 0.6 s of which batch 0.4 s, step 0 0.2 s; node busy 1 s.
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_42", 600_000_000);
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_42/step_batch", 400_000_000);
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_42/step_0", 200_000_000);
        _proc.SetStat(100, 0);
        SetCounters(900_000, 0, 0);
        s.ReadSources(1000 * Ms, 1000 * Ms);
        s.Attribute(1000 * Ms, 1000 * Ms);
        s.Complete(StopReason.Signal, null, 1000 * Ms, 1000 * Ms);

        var sums = Sums();
        Assert.Equal(540_000, sums[("job:42", "cpu_package:0")]);
        Assert.Equal(360_000, sums[("step:42.batch", "cpu_package:0")]);
        Assert.Equal(180_000, sums[("step:42.0", "cpu_package:0")]);
        Assert.Equal(360_000, sums[("unattributed", "cpu_package:0")]); // steps are not taken out of anything

        var summary = Alumet.Hpc.Outputs.JobSummary.FromSpool(_state.Root);
        Assert.Equal(0.54, summary.Job.Energy.PackageJ, 12);
        Assert.Equal(new[] { "42.0", "42.batch" }, summary.Steps.Select(x => x.StepId).OrderBy(x => x, StringComparer.Ordinal));
        Assert.Equal(0.36, summary.Steps.Single(x => x.StepId == "42.batch").Summary.Energy.PackageJ, 12);
    }

    [Fact]
    public void AReadErrorFlagsTheNodeAndTheJobRecordsOfThatInterval()
    {
        using var attribution = new JobAttribution(_job, null, _proc.Root, exclusive: true, new HashSet<string>());
        // 0.5 W: no wrap doubt on the 1 J counters, even over dram's own 1 s between good reads (timing is per channel).
        var s = NewSampler(new SamplerSettings(1000, 1000, 1000, MaxPowerW: 0.5), attribution);
        SetCounters(0, 0, 0);
        s.ReadSources(0, 0);
        File.WriteAllText(_powercap.PathOf("intel-rapl:0:1", "energy_uj"), "garbage\n"); // dram unreadable
        s.ReadSources(500 * Ms, 500 * Ms);
        SetCounters(100, 10, 20);
        s.ReadSources(1000 * Ms, 1000 * Ms);
        s.Store(1000 * Ms, 1000 * Ms);
        s.Attribute(1000 * Ms, 1000 * Ms);
        s.Complete(StopReason.Signal, null, 1000 * Ms, 1000 * Ms);

        var meta = SpoolWriter.ReadMeta(_state.Root);
        var first = SpoolReader.ReadAll(_state.Root).Where(r => r.WallNs == 1000 * Ms && r.IntervalNs > 0).ToList();
        string Of(SpoolRecord r) => $"{meta.Series[r.Series].Consumer}/{meta.Series[r.Series].ResourceKind}";
        Assert.Equal(SpoolFlags.ReadError, first.Single(r => Of(r) == "node/dram").Flags);
        Assert.Equal(SpoolFlags.ReadError, first.Single(r => Of(r) == "job:42/dram").Flags);
        Assert.Equal(SpoolFlags.None, first.Single(r => Of(r) == "job:42/cpu_package").Flags);
        Assert.Equal(20, first.Single(r => Of(r) == "job:42/dram").Value); // the next good read recovers the energy
    }

    [Fact]
    public void ReadingTheSourcesAllocatesNothing()
    {
        var s = NewSampler(new SamplerSettings(1000, 1000, 1000, 1000), attribution: null);
        // Warm-up past tiered JIT: enough calls to be promoted, then time for the background tier-1 compile to install.
        for (int i = 0; i < 5000; i++) s.ReadSources(i * Ms, i * Ms);
        Thread.Sleep(300);
        for (int i = 5000; i < 5100; i++) s.ReadSources(i * Ms, i * Ms);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 5100; i < 7100; i++) s.ReadSources(i * Ms, i * Ms);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        s.Complete(StopReason.Signal, null, 7100 * Ms, 7100 * Ms);
    }

    [Fact]
    public void ExclusiveChargesTheWholeNode()
    {
        using var attribution = new JobAttribution(_job, null, _proc.Root, exclusive: true, new HashSet<string>());
        var s = NewSampler(new SamplerSettings(1000, 1000, 1000, 1000), attribution);
        SetCounters(0, 0, 0);
        s.ReadSources(0, 0);
        SetCounters(5_000, 1_000, 2_000);
        s.ReadSources(500 * Ms, 500 * Ms);
        s.Complete(StopReason.Signal, null, 500 * Ms, 500 * Ms);
        var sums = Sums();
        Assert.Equal(5_000, sums[("job:42", "cpu_package:0")]);
        Assert.Equal(0, sums[("unattributed", "cpu_package:0")]);
        Assert.Equal("exclusive", SpoolWriter.ReadMeta(_state.Root).AttributionMode);
    }

    [Fact]
    public void FlushedRecordsSurviveWithoutCompleteAndATornTailIsIgnored()
    {
        var s = NewSampler(new SamplerSettings(1000, 1000, 1000, 1000), attribution: null);
        SetCounters(0, 0, 0);
        s.ReadSources(0, 0);
        SetCounters(10, 20, 30);
        s.ReadSources(1000 * Ms, 1000 * Ms);
        s.Store(1000 * Ms, 1000 * Ms);
        s.Flush();
        SetCounters(11, 21, 31);
        s.ReadSources(2000 * Ms, 2000 * Ms);
        s.Store(2000 * Ms, 2000 * Ms); // buffered, never flushed: lost like in a kill -9
        // A crash in the middle of a write(2) leaves a partial record.
        File.AppendAllText(Path.Combine(_state.Root, SpoolWriter.RecordsFile), "torn");

        Assert.Equal(new long[] { 10, 20, 30 }, SpoolReader.ReadAll(_state.Root).Select(r => r.Value));
    }
}
