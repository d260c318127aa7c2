using Alumet.Hpc.Core;
using Alumet.Hpc.Outputs.Parquet;
using Alumet.Hpc.Tests.Fakes;
using Xunit.Abstractions;

namespace Alumet.Hpc.Tests.Sampling;

/// <summary>
/// NVML is read on a thread of its own (README "Timing"), at 10 Hz here, while the housekeeping closes a period every
/// second: both start together, so the GPU's reads fall next to the periods' ends, some just before and some just after.
/// A period's GPU energy is the energy between the last reads before its two ends — 9 to 11 reads' worth of a 10-read
/// period — and its row said one period: a steady GPU swung ±10 % from row to row and MaxPower read its +10 %.
/// </summary>
public sealed class NvmlPhaseTests(ITestOutputHelper output) : IDisposable
{
    private const long Ms = 1_000_000;
    private const long Us = 1_000;
    private const long Wall0 = 1_700_000_000_000 * Ms;
    private const string Gpu0 = "gpu:0000:3b:00.0";
    private readonly NodeRig _rig = new();

    public void Dispose() => _rig.Dispose();

    /// <summary>
    /// A steady GPU (100 W: the fake library's counter is set to 0.1 mJ a µs of each read's stamp, as its own thread
    /// reads it) and a steady package (50 W), 1 s storage, NVML at 10 Hz; job 42 (exclusive) from 1 s to 4 s. The GPU's
    /// reads are 100 ms apart, and the ones next to the periods' ends land 30 µs on either side of them: after the
    /// registration and after the 3 s snapshot (read after them: the next period's), before the 2 s snapshot and before
    /// the end. A GPU row held 1099.97, 900.03 and 1099.97 ms of energy and said 1 s: 110, 90, 110 W. Each GPU row now
    /// says the time between the two reads that bound its energy, so every row's power is 100 W and the peak 150 W exactly
    /// (each source's energy over its own time); the GPU's energy is unchanged, every interval conserves, Elapsed and
    /// Start are the periods' (the package's), and no row seems lost.
    /// </summary>
    [Fact]
    public void ASteadyGpuReadOnEitherSideOfThePeriodsEndsHasItsPowerAsMaxPowerAndInEveryRow()
    {
        var cfg = _rig.Config(storageMs: 1000);
        cfg.Sampler.NvmlHz = 10;
        _rig.AtZero("42");
        using var node = _rig.NewNodeWithGpu(cfg);
        void Gpu(long us)
        {
            _rig.Nvml!.Set("e0", (ulong)us / 10); // 100 W: 0.1 mJ a µs
            node.Buffer.Read(_rig.Gpu!, us * Us, Wall0 + us * Us);
        }
        void GpuEvery100Ms(long fromMs, long toMs)
        {
            for (long t = fromMs; t <= toMs; t += 100) Gpu(t * 1000);
        }
        void Package(long ms) => _rig.SetCounters((ulong)ms * 50_000, 0, 0); // 50 W: 50 000 µJ a ms

        GpuEvery100Ms(100, 900);
        Package(1000);
        node.Register(NodeRig.Job("42", exclusive: true), false, 1000 * Ms, Wall0 + 1000 * Ms);
        Gpu(1_000_030); // stamped 30 µs after the registration's instant, read after it
        GpuEvery100Ms(1100, 1900);
        Gpu(1_999_970); // stamped 30 µs before the snapshot's instant, read before it
        Package(2000);
        node.Snapshot(2000 * Ms, Wall0 + 2000 * Ms);
        GpuEvery100Ms(2100, 2900);
        Package(3000);
        node.Snapshot(3000 * Ms, Wall0 + 3000 * Ms);
        Gpu(3_000_030);
        GpuEvery100Ms(3100, 3900);
        Gpu(3_999_970);
        Package(4000);
        var end = node.End(NodeRig.Job("42").Key, true, "", 4000 * Ms, Wall0 + 4000 * Ms)!;
        node.Close(4000 * Ms, Wall0 + 4000 * Ms);

        // The accounting row: 50 W + 100 W (main: the 2 s period's 109.997 J of GPU over 1 s made it 159.997 W).
        var row = end.Record!;
        Assert.Equal(150.0, row.MaxPowerW, 9);
        using (var db = Hpc.Outputs.Accounting.AccountingDb.OpenReadOnly(cfg.Paths.Database))
            Assert.Equal(150.0, Assert.Single(db.GetJob("42")).MaxPowerW, 9);

        var job = ReadOrderTests.Series(end.ParquetPath);
        (long EndMs, long IntervalUs, long Raw)[] Rows(string consumer, string domain) =>
            job[(consumer, domain)].Select(r => ((r.EndUs - Wall0 / 1000) / 1000, r.IntervalUs, r.Raw)).ToArray();
        // The GPU's rows: from the last read before each period's start to the last read before its end.
        Assert.Equal(new (long, long, long)[]
        {
            (2000, 1_099_970, 109_997), // 900 ms → 1999.97 ms
            (3000, 900_030, 90_003),    // 1999.97 ms → 2900 ms
            (4000, 1_099_970, 109_997), // 2900 ms → 3999.97 ms
        }, Rows("job:42", Gpu0));
        Assert.Equal(Rows("job:42", Gpu0), Rows("node", Gpu0));
        Assert.Equal(new (long, long, long)[] { (2000, 1_000_000, 50_000_000), (3000, 1_000_000, 50_000_000), (4000, 1_000_000, 50_000_000) },
            Rows("job:42", "cpu_package:0"));
        // Power per row, as the Parquet's readers compute it (energy_raw × joules_per_unit / interval): 100 W in every row.
        foreach (var (_, intervalUs, raw) in Rows("job:42", Gpu0))
            Assert.Equal(100.0, raw * 1e-3 / (intervalUs / 1e6), 9);

        // The report's timeline (--timeline, --plot): 1 s periods, as the storage's, from the first row's start (900.03 ms;
        // the last period holds no row's middle); the GPU's power, and the job's counted total, each domain's power over
        // its own time.
        IEnumerable<double> Watts(string domain, TimeSpan? period = null) => PowerTimeline.ReadAsync([end.ParquetPath], 40, period)
            .GetAwaiter().GetResult().Series.Single(x => (x.Domain, x.Consumer) == (domain, "job:42")).Watts().Select(w => Math.Round(w, 9));
        Assert.Equal(new[] { 150.0, 150.0, 150.0, double.NaN }, Watts(PowerTimeline.CountedTotal, TimeSpan.FromSeconds(1)));
        Assert.Equal(new[] { 100.0, 100.0, 100.0, double.NaN }, Watts(Gpu0)); // the period it picks itself
        Assert.Equal(new[] { 150.0, 150.0, 150.0, double.NaN }, Watts(PowerTimeline.CountedTotal));

        Assert.Equal(309.997, row.Energy.GpuJ, 9);     // every mJ the GPU counted from 900 ms to 3999.97 ms, once
        Assert.Equal(3.0, row.ElapsedS, 12);           // the periods' (the package's), not the GPU's 3.09997 s
        // AvePower, each source's energy over its own time as MaxPower (main: 459.997 J / 3 s = 153.332 W, above the peak).
        Assert.Equal(150.0, row.AvePowerW, 9);
        Assert.Equal(Clock.FromWallNs(Wall0 + 1000 * Ms), row.Start);
        Assert.Equal(0, row.Uncertainty.MissedJ);      // the GPU rows' intervals ending up to 100 ms early lose nothing

        string nodeFile = Directory.GetFiles(cfg.Paths.DataDir, "node1.*.parquet", SearchOption.AllDirectories).Single();
        Assert.Equal(new long[] { 900_000, 1_099_970, 900_030, 1_099_970 }, ReadOrderTests.Series(nodeFile)[("node", Gpu0)].Select(r => r.IntervalUs));
        // Every interval conserves: 4 domains (package, cores, DRAM, GPU) × the job's 3 periods, and × the node's 4.
        Conservation.AssertEveryInterval(end.ParquetPath, 12);
        Conservation.AssertEveryInterval(nodeFile, 16);
    }

    /// <summary>
    /// The real scheduling loop: the daemon's NVML slot over the fake library, whose counter is 100 W × the time since
    /// its init at each call (<c>energy_rate_mw</c>), polled on its own thread at 9.5 Hz, so its reads slide past the
    /// housekeeping's 1 s periods (9 or 10 of them a period: a row held 947 or 1053 ms of the GPU's energy and said one
    /// period, 94.7 or 105.3 W). Every row's power and the peak are the steady 100 W, to within what the clocks allow:
    /// the fake reads its clock a few µs after the sampler stamps the read (1 % is 10 ms of that per 1 s row).
    /// </summary>
    [Fact]
    public void InTheRealLoopAGpuPolledOutOfStepWithThePeriodsShowsItsSteadyPowerInEveryRowAndAsPeak()
    {
        var cfg = _rig.Config(storageMs: 1000);
        cfg.Sampler.NvmlHz = 9.5;
        _rig.AtZero("42");
        using var fake = new Fakes.Nvml.FakeNvml("dev 0 bus_id 00000000:3B:00.0\ndev 0 energy_rate_mw 100000\n");
        cfg.Paths.NvmlLibrary = fake.LibraryPath;
        var gpu = Hpc.Sources.Nvml.NvmlSlot.Create(cfg)!;
        try
        {
            using var node = _rig.NewNode(cfg, ownThreadSlot: gpu, startMonotonicNs: Clock.MonotonicNs());
            var sampler = new Hpc.Sampling.Sampler(node.Buffer, node);
            using var stop = new CancellationTokenSource();
            var loop = new Thread(() => sampler.Run(stop.Token)) { IsBackground = true };
            loop.Start();
            // Registered once the loop runs (its registration closes the period): the job's first GPU row starts at a read.
            Thread.Sleep(1_250);
            Assert.StartsWith("job 42 registered", node.Register(NodeRig.Job("42", exclusive: true), false, Clock.MonotonicNs(), Clock.WallNs()));
            Thread.Sleep(4_300);
            var end = node.End(NodeRig.Job("42").Key, true, "", Clock.MonotonicNs(), Clock.WallNs())!;
            stop.Cancel();
            loop.Join();
            node.Close(Clock.MonotonicNs(), Clock.WallNs());

            var rows = ReadOrderTests.Series(end.ParquetPath)[("job:42", Gpu0)];
            foreach (var r in rows) output.WriteLine($"GPU row: {r.IntervalUs} µs, {r.Raw} mJ, {r.Raw * 1e-3 / (r.IntervalUs / 1e6):F4} W");
            output.WriteLine($"MaxPower {end.Record!.MaxPowerW:F4} W, Elapsed {end.Record.ElapsedS:F6} s");
            Assert.True(rows.Count >= 4, $"{rows.Count} GPU row(s)");
            foreach (var r in rows.Where(r => r.IntervalUs > 0))
                Assert.InRange(r.Raw * 1e-3 / (r.IntervalUs / 1e6), 99.0, 101.0);
            Assert.InRange(end.Record.MaxPowerW, 99.0, 101.0);
            Conservation.AssertEveryInterval(end.ParquetPath, rows.Count * 4); // the job's periods (a GPU row each, the job alone on the node), per counter
        }
        finally
        {
            gpu.Source.Dispose();
        }
    }
}
