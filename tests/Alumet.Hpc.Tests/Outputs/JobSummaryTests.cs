using Alumet.Hpc.Outputs;
using Alumet.Hpc.Spool;
using Xunit;
using static Alumet.Hpc.Tests.Outputs.SmallSpool;

namespace Alumet.Hpc.Tests.Outputs;

public sealed class JobSummaryTests
{
    [Fact]
    public void JobEnergyPerDomainIsRawSumConvertedOnce()
    {
        using var tmp = new TempDir();
        SmallSpool.Write(tmp.Path);
        var s = JobSummary.FromSpool(tmp.Path);

        Assert.Equal("1234", s.JobId);
        Assert.Equal(J(1), s.Job.Energy.PackageJ);
        Assert.Equal(180.0, s.Job.Energy.PackageJ, 9);
        Assert.Equal(J(5), s.Job.Energy.DramJ);
        Assert.Equal(J(9), s.Job.Energy.GpuJ);
        Assert.Equal(600.0, s.Job.Energy.GpuJ, 9);
        Assert.Equal(J(10), s.Job.Energy.CoreJ);
        Assert.Equal(J(13), s.Job.Energy.PsysJ);
        Assert.Equal(0, s.Job.Energy.UncoreJ);
        // Total = package + dram + gpu; cores and psys are not added.
        Assert.Equal(J(1) + J(5) + J(9), s.Job.TotalEnergyJ);
        Assert.Equal(816.0, s.Job.TotalEnergyJ, 9);
    }

    [Fact]
    public void TimesPowersAndCounts()
    {
        using var tmp = new TempDir();
        SmallSpool.Write(tmp.Path);
        var s = JobSummary.FromSpool(tmp.Path);

        Assert.Equal(TestSpools.T0, s.Job.StartNs);          // first record's end minus its interval
        Assert.Equal(TestSpools.T0 + 3 * Sec, s.Job.EndNs);
        Assert.Equal(3.0, s.Job.ElapsedS);
        Assert.Equal(816.0 / 3, s.Job.AvePowerW, 9);
        // Peak at t=2: 90 J package + 12 J dram + 250 J gpu over 1 s (cores/psys excluded).
        Assert.Equal(352.0, s.Job.MaxPowerW, 9);
        Assert.Equal(3 * 5, s.Job.Samples);                  // job:1234 has 5 series × 3 intervals
        Assert.Equal(1, s.Job.WrapAmbiguous);
        Assert.Equal(1, s.Job.ReadErrors);
        Assert.Equal(1, s.Node.ReadErrors);
        Assert.Equal(["nvml-energy-counter", "powercap"], s.Interfaces);
        Assert.False(s.Estimated);
        Assert.Equal("", s.EstimateModel);
        Assert.Equal("nvml=20,rapl=1000", s.FrequencyList);
        Assert.Equal(1000, s.MaxFrequencyHz);
    }

    [Fact]
    public void NodeOtherJobsUnattributedConserve()
    {
        using var tmp = new TempDir();
        SmallSpool.Write(tmp.Path);
        var s = JobSummary.FromSpool(tmp.Path);
        Assert.Equal(J(0), s.Node.Energy.PackageJ);
        Assert.Equal(J(2), s.OtherJobs.Energy.PackageJ);
        Assert.Equal(J(3), s.Unattributed.Energy.PackageJ);
        Assert.Equal(J(4), s.Node.Energy.DramJ);
        Assert.Equal(J(8), s.Node.Energy.GpuJ);
        // Raw conservation holds in the fixture: job + other + unattributed = node, per domain.
        Assert.Equal(RawSum(0), RawSum(1) + RawSum(2) + RawSum(3));
        Assert.Equal(RawSum(4), RawSum(5) + RawSum(6) + RawSum(7));
    }

    [Fact]
    public void StepsAreSeparateAndOrderedLikeSacct()
    {
        using var tmp = new TempDir();
        SmallSpool.Write(tmp.Path);
        var s = JobSummary.FromSpool(tmp.Path);
        Assert.Equal(["1234.batch", "1234.0"], s.Steps.Select(x => x.StepId));
        Assert.Equal(J(11), s.Steps[0].Summary.Energy.PackageJ);
        Assert.Equal(60.0, s.Steps[0].Summary.Energy.PackageJ, 9);
        Assert.Equal(J(12), s.Steps[1].Summary.Energy.PackageJ);
        Assert.Equal(3, s.Steps[1].Summary.Samples);
        // Steps do not change the job share.
        Assert.Equal(J(1), s.Job.Energy.PackageJ);
    }

    [Fact]
    public void EstimatedSpoolNamesItsModel()
    {
        using var tmp = new TempDir();
        var meta = TestSpools.Meta("9", model: "generic-per-core");
        meta.Series.Add(TestSpools.S("node", "cpu_package", "0", "estimate"));
        meta.Series.Add(TestSpools.S("job:9", "cpu_package", "0", "estimate"));
        TestSpools.Write(tmp.Path, meta, [TestSpools.R(TestSpools.T0 + Sec, Sec, 5_000_000, 0), TestSpools.R(TestSpools.T0 + Sec, Sec, 2_500_000, 1)]);
        var s = JobSummary.FromSpool(tmp.Path);
        Assert.True(s.Estimated);
        Assert.Equal("generic-per-core", s.EstimateModel);
        Assert.Equal(["estimate"], s.Interfaces);
        Assert.Equal(2.5, s.Job.TotalEnergyJ, 12);
    }

    [Fact]
    public void EmptySpoolGivesZeroSummaryAtSamplerStart()
    {
        using var tmp = new TempDir();
        var meta = TestSpools.Meta("5");
        meta.Series.Add(TestSpools.S("job:5", "cpu_package", "0"));
        TestSpools.Write(tmp.Path, meta, []);
        var s = JobSummary.FromSpool(tmp.Path);
        Assert.Equal(0, s.Job.Samples);
        Assert.Equal(0, s.Job.TotalEnergyJ);
        Assert.Equal(TestSpools.T0, s.Job.StartNs);
        Assert.Equal(0, s.Job.ElapsedS);
        Assert.Equal(0, s.Job.AvePowerW);
    }

    [Fact]
    public void PeakWindowStaysExactOverManyTimestamps()
    {
        // 10,000 timestamps (more than the bounded window): the one peak in the middle must still be found.
        using var tmp = new TempDir();
        var meta = TestSpools.Meta("8");
        meta.Series.Add(TestSpools.S("job:8", "cpu_package", "0"));
        meta.Series.Add(TestSpools.S("job:8", "dram", "0"));
        var recs = new List<SpoolRecord>();
        for (int i = 1; i <= 10_000; i++)
        {
            long v = i == 5_000 ? 900_000 : 100_000; // µJ per ms: 100 W, peak 900 W on the package
            recs.Add(TestSpools.R(TestSpools.T0 + i * 1_000_000L, 1_000_000, v, 0));
            recs.Add(TestSpools.R(TestSpools.T0 + i * 1_000_000L, 1_000_000, 10_000, 1));
        }
        TestSpools.Write(tmp.Path, meta, recs);
        var s = JobSummary.FromSpool(tmp.Path);
        // 1 s windows (attribution_period_ms): the one with the 1 ms spike holds 999 × 110 mJ + 910 mJ. Per read (1 ms)
        // it would read 910 W: RAPL's ~1 ms update aliases with 1 kHz reads, so a per-read peak is noise.
        Assert.Equal(110.8, s.Job.MaxPowerW, 9);
        Assert.Equal((9_999 * 100_000L + 900_000 + 10_000 * 10_000L) * 1e-6, s.Job.TotalEnergyJ, 9);
        Assert.Equal(10.0, s.Job.ElapsedS, 12);
    }

    /// <summary>
    /// At raw storage the node's series are the sources' own reads: RAPL every 1 ms, NVML every 50 ms, the BMC every 1 s
    /// (not in the total). A peak window is at least 1 s of each source's own time: 300 W in the first second (package
    /// 100 W + GPU 200 W), 500 W in the second (300 + 200). Every source's steps used to be added into one window length
    /// (the BMC's 1 s included), so the windows were longer than the time they held and the node's peak read low.
    /// </summary>
    [Fact]
    public void TheNodesPeakAtRawStorageTakesEachSourcesOwnTime()
    {
        using var tmp = new TempDir();
        var meta = TestSpools.Meta("9"); // raw storage, 1 s attribution period: 1 s windows
        meta.Series.Add(TestSpools.S("node", "cpu_package", "0"));
        meta.Series.Add(TestSpools.S("node", "gpu", "0000:3b:00.0", "nvml-energy-counter", 1e-3));
        meta.Series.Add(TestSpools.S("node", "node_wall", "bmc", "ipmi-dcmi", 1e-3));
        var recs = new List<SpoolRecord>();
        for (long ms = 1; ms <= 2000; ms++)
        {
            long at = TestSpools.T0 + ms * 1_000_000;
            recs.Add(TestSpools.R(at, 1_000_000, ms <= 1000 ? 100_000 : 300_000, 0)); // 100 W, then 300 W
            if (ms % 50 == 0) recs.Add(TestSpools.R(at, 50_000_000, 10_000, 1));    // 200 W
            if (ms % 1000 == 0) recs.Add(TestSpools.R(at, Sec, 600_000, 2));        // 600 W at the wall
        }
        TestSpools.Write(tmp.Path, meta, recs);
        var s = JobSummary.FromSpool(tmp.Path);
        Assert.Equal(500.0, s.Node.MaxPowerW, 9);
        Assert.Equal(800.0, s.Node.TotalEnergyJ, 9); // 100 + 300 J of package, 400 J of GPU
        Assert.Equal(400.0, s.Node.AvePowerW, 9);
    }

    [Fact]
    public void AShortFinalIntervalJoinsTheWindowBeforeItInsteadOfMakingThePeak()
    {
        // 1 s storage, a GPU at 300 W; the sampler stops 5 ms into a period and that last read caught one 100 ms
        // NVML counter step (30 J): 30 J / 5 ms read as 6 kW, 20x the real peak.
        using var tmp = new TempDir();
        var meta = TestSpools.Meta("21");
        meta.StoragePeriodMs = 1000;
        meta.Series.Add(TestSpools.S("job:21", "gpu", "0000:3b:00.0", "nvml-energy-counter", 1e-3));
        TestSpools.Write(tmp.Path, meta,
        [
            TestSpools.R(TestSpools.T0 + 1 * Sec, Sec, 300_000, 0),
            TestSpools.R(TestSpools.T0 + 2 * Sec, Sec, 300_000, 0),
            TestSpools.R(TestSpools.T0 + 3 * Sec, Sec, 300_000, 0),
            TestSpools.R(TestSpools.T0 + 3 * Sec + 5_000_000, 5_000_000, 30_000, 0),
        ]);
        var s = JobSummary.FromSpool(tmp.Path);
        Assert.Equal(330.0 / 1.005, s.Job.MaxPowerW, 9);
        Assert.Equal(930.0 / 3.005, s.Job.AvePowerW, 9);
    }

    [Fact]
    public void AJobShorterThanOneWindowHasItsAveragePowerAsPeak()
    {
        using var tmp = new TempDir();
        var meta = TestSpools.Meta("22");
        meta.StoragePeriodMs = 1000;
        meta.Series.Add(TestSpools.S("job:22", "cpu_package", "0"));
        TestSpools.Write(tmp.Path, meta, [TestSpools.R(TestSpools.T0 + 200_000_000, 200_000_000, 4_000_000, 0), TestSpools.R(TestSpools.T0 + 250_000_000, 50_000_000, 6_000_000, 0)]);
        var s = JobSummary.FromSpool(tmp.Path);
        Assert.Equal(40.0, s.Job.MaxPowerW, 9); // 10 J over 250 ms, not 6 J / 50 ms = 120 W
        Assert.Equal(40.0, s.Job.AvePowerW, 9);
    }

    [Fact]
    public void ElapsedAndAveragePowerUseTheMonotonicClockNotTheWallClock()
    {
        // Three 1 s intervals; NTP steps the wall clock 1 h forward before the third one is stored.
        using var tmp = new TempDir();
        var meta = TestSpools.Meta("23");
        meta.StoragePeriodMs = 1000;
        meta.Series.Add(TestSpools.S("job:23", "cpu_package", "0"));
        meta.Series.Add(TestSpools.S("job:23", "dram", "0"));
        TestSpools.Write(tmp.Path, meta,
        [
            TestSpools.R(TestSpools.T0 + 1 * Sec, Sec, 100_000_000, 0), TestSpools.R(TestSpools.T0 + 1 * Sec, Sec, 20_000_000, 1),
            TestSpools.R(TestSpools.T0 + 2 * Sec, Sec, 100_000_000, 0), TestSpools.R(TestSpools.T0 + 2 * Sec, Sec, 20_000_000, 1),
            TestSpools.R(TestSpools.T0 + 3603 * Sec, Sec, 100_000_000, 0), TestSpools.R(TestSpools.T0 + 3603 * Sec, Sec, 20_000_000, 1),
        ]);
        var s = JobSummary.FromSpool(tmp.Path);
        Assert.Equal(3.0, s.Job.ElapsedS);
        Assert.Equal(120.0, s.Job.AvePowerW, 9);
        Assert.Equal(120.0, s.Job.MaxPowerW, 9);
        Assert.Equal(TestSpools.T0 + 3603 * Sec, s.Job.EndNs); // timestamps stay wall-clock
    }
}
