using Alumet.Hpc.Attribution;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Sources.Rapl;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sampling;

/// <summary>
/// The node sampler's pipeline driven by hand over generated counters, cgroups and /proc/stat, through its real
/// entry points (Register, the tick's reads, Snapshot, End): every stored number is known in advance.
/// </summary>
public class NodeSamplerTests : IDisposable
{
    private const long Ms = 1_000_000;
    private readonly NodeRig _rig = new(maxRange: 999_999); // wraps at 1 J
    private PowercapTree _powercap => _rig.Powercap;
    private ProcTree _proc => _rig.Proc;
    private CgroupTree _cgroups => _rig.Cgroups;
    private SourceSlot? _slot => _rig.Slot;

    public void Dispose() => _rig.Dispose();

    private AlumetConfig Config(int storageMs = 1000, double maxPowerW = 1000) => _rig.Config(storageMs, maxPowerW);

    private NodeSampler NewNode(AlumetConfig cfg) => _rig.NewNode(cfg);

    private static JobRegistration Job(string id, bool exclusive = false, bool raw = false) => NodeRig.Job(id, exclusive, raw);

    private void SetCounters(ulong package, ulong core, ulong dram) => _rig.SetCounters(package, core, dram);

    private void SetJobCpu(string id, ulong ns) => _rig.SetJobCpu(id, ns);

    internal static List<(string Consumer, string Resource, SpoolRecord R)> Rows(string dir)
    {
        var meta = SpoolWriter.ReadMeta(dir);
        return SpoolReader.ReadAll(dir)
            .Select(r => (meta.Series[r.Series].Consumer, $"{meta.Series[r.Series].ResourceKind}:{meta.Series[r.Series].ResourceId}", r))
            .ToList();
    }

    internal static Dictionary<(string Consumer, string Resource), long> Sums(string dir) =>
        Rows(dir).GroupBy(x => (x.Consumer, x.Resource)).ToDictionary(g => g.Key, g => g.Sum(x => x.R.Value));

    private static string JobDir(AlumetConfig cfg, string id) => Job(id).Job.StateDirectory(cfg.Paths.StateDir);

    private static string JobDir(AlumetConfig cfg, string scheduler, string id) => Path.Combine(cfg.Paths.StateDir, scheduler, id);

    private static string NodeDir(NodeSampler node) => Directory.GetDirectories(Path.Combine(node.StateRoot, NodeSpool.Directory)).Single();

    [Fact]
    public void AggregatedStorageKeepsExactEnergyAcrossAWrapAndTheAloneJobGetsTheNodeSeries()
    {
        var cfg = Config(maxPowerW: 1); // ≤ 1 W on a 1 J counter: reads up to 1 s apart hold at most one wrap
        SetCounters(999_000, 500, 10);
        using var node = NewNode(cfg);
        node.Register(Job("42", exclusive: true), recovered: false, 0);
        SetCounters(999_900, 700, 20);
        node.Buffer.Read(_slot!, 100 * Ms, 1_100 * Ms);
        SetCounters(400, 900, 30);                // package wrapped: 100 + 400 = 500 µJ
        node.Buffer.Read(_slot!, 200 * Ms, 1_200 * Ms);
        node.Snapshot(1000 * Ms, 2_000 * Ms);
        SetCounters(1_400, 1_000, 30);
        node.Snapshot(1500 * Ms, 2_500 * Ms);
        node.Flush();

        var rows = Rows(JobDir(cfg, "42")).Where(x => x.Consumer == "node").ToList();
        Assert.Equal(new long[] { 1_400, 400, 20, 1_000, 100, 0 }, rows.Select(x => x.R.Value));
        Assert.Equal(new long[] { 1000 * Ms, 1000 * Ms, 1000 * Ms, 500 * Ms, 500 * Ms, 500 * Ms }, rows.Select(x => x.R.IntervalNs));
        Assert.All(rows, x => Assert.Equal(SpoolFlags.None, x.R.Flags));
        var sums = Sums(JobDir(cfg, "42"));
        Assert.Equal(2_400, sums[("job:42", "cpu_package:0")]);
        Assert.Equal(0, sums[("unattributed", "cpu_package:0")]);
        node.Close(1500 * Ms, 2_500 * Ms);
    }

    [Fact]
    public void EveryIntervalOfEveryFileConservesTheNodeEnergyBetweenAllJobs()
    {
        var cfg = Config();
        SetCounters(0, 0, 0);
        _proc.SetStat(busyTicks: 0, idleTicks: 0);
        using var node = NewNode(cfg);
        SetJobCpu("42", 0);
        SetJobCpu("43", 0);
        node.Register(Job("42"), false, 0);
        node.Register(Job("43"), false, 0);

        // Second 1: node busy 1.0 s (100 ticks); job 42 used 0.6 s, job 43 0.3 s; 0.1 s system.
        SetCounters(900_000, 600_000, 300_001);
        _proc.SetStat(100, 100);
        SetJobCpu("42", 600_000_000);
        SetJobCpu("43", 300_000_000);
        node.Snapshot(1000 * Ms, 11_000 * Ms);
        // Second 2: the counters move between the tick's reads; only job 43 works (0.5 s of a 1 s busy node).
        SetCounters(950_000, 600_000, 300_001);
        node.Buffer.Read(_slot!, 1500 * Ms, 11_500 * Ms);
        SetCounters(999_999, 700_000, 400_000);
        _proc.SetStat(200, 200);
        SetJobCpu("43", 800_000_000);
        node.Snapshot(2000 * Ms, 12_000 * Ms);
        node.Flush();

        string nodeDir = NodeDir(node);
        Conservation.AssertEveryInterval(nodeDir, 6); // 2 intervals × 3 domains, same timestamps for every consumer
        var first = Rows(nodeDir).Where(x => x.R.WallNs == 11_000 * Ms && x.Resource == "cpu_package:0").ToDictionary(x => x.Consumer, x => x.R.Value);
        Assert.Equal(540_000, first["job:42"]);
        Assert.Equal(270_000, first["job:43"]);
        Assert.Equal(90_000, first["unattributed"]);
        var second = Rows(nodeDir).Where(x => x.R.WallNs == 12_000 * Ms && x.Resource == "dram:0").ToDictionary(x => x.Consumer, x => x.R.Value);
        Assert.Equal(0, second["job:42"]);
        Assert.Equal(49_999, second["job:43"]);   // floor(99_999 × 0.5)
        Assert.Equal(50_000, second["unattributed"]);

        // Each job's file holds its own share only (two jobs share the node), at the node file's timestamps.
        foreach (string id in new[] { "42", "43" })
        {
            var jobRows = Rows(JobDir(cfg, id));
            Assert.All(jobRows, x => Assert.Equal($"job:{id}", x.Consumer));
            Assert.Equal(new[] { 11_000 * Ms, 12_000 * Ms }, jobRows.Select(x => x.R.WallNs).Distinct());
            foreach (var x in jobRows)
                Assert.Equal(Rows(nodeDir).Single(n => n.Consumer == x.Consumer && n.Resource == x.Resource && n.R.WallNs == x.R.WallNs).R.Value, x.R.Value);
        }
        node.Close(2000 * Ms, 12_000 * Ms);
    }

    [Fact]
    public void TheFirstPeriodIsAttributed()
    {
        var cfg = Config();
        SetCounters(0, 0, 0);
        _proc.SetStat(0, 0);
        using var node = NewNode(cfg);
        node.Register(Job("42"), false, 0);
        SetJobCpu("42", 1_000_000_000); // the cgroup appears after the prolog and uses the whole node for 1 s
        _proc.SetStat(100, 0);
        SetCounters(800_000, 0, 0);
        node.Snapshot(1000 * Ms, 1000 * Ms);
        node.Flush();
        Assert.Equal(800_000, Sums(JobDir(cfg, "42"))[("job:42", "cpu_package:0")]);
        node.Close(1000 * Ms, 1000 * Ms);
    }

    [Fact]
    public void StepsGetTheirPartOfTheJobShareAndAreNotAddedToIt()
    {
        var cfg = Config();
        SetCounters(0, 0, 0);
        _proc.SetStat(0, 0);
        SetJobCpu("42", 0);
        using var node = NewNode(cfg);
        node.Register(Job("42"), false, 0);
        node.Register(Job("43"), false, 0);
        // job 42: 0.6 s of which batch 0.4 s, step 0 0.2 s; node busy 1 s.
        SetJobCpu("42", 600_000_000);
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_42/step_batch", 400_000_000);
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_42/step_0", 200_000_000);
        _proc.SetStat(100, 0);
        SetCounters(900_000, 0, 0);
        node.Snapshot(1000 * Ms, 1000 * Ms);
        node.Flush();

        var sums = Sums(JobDir(cfg, "42"));
        Assert.Equal(540_000, sums[("job:42", "cpu_package:0")]);
        Assert.Equal(360_000, sums[("step:42.batch", "cpu_package:0")]);
        Assert.Equal(180_000, sums[("step:42.0", "cpu_package:0")]);
        Assert.Equal(360_000, Sums(NodeDir(node))[("unattributed", "cpu_package:0")]); // steps are not taken out of anything
        node.Close(1000 * Ms, 1000 * Ms);
    }

    /// <summary>
    /// Raw storage: every read reaches the node spool and the spool of the job alone on the node as the same record, each
    /// under that spool's own id of the node series; a new day's node spool numbers its series anew (its first records
    /// are the split's), so the raw tick's ids are per spool and change with the day's roll.
    /// </summary>
    [Fact]
    public void RawReadsReachTheNodeSpoolAndTheAloneJobsAlikeAcrossADayRoll()
    {
        const long Day = 86_400_000 * Ms;
        long wall0 = 20_000 * Day - 500 * Ms; // 0.5 s before a UTC midnight (2024-10-04)
        var cfg = Config(storageMs: 0, maxPowerW: 1); // raw storage; ≤ 1 W on the 1 J counters: no wrap doubt
        SetCounters(0, 0, 0);
        using var node = NewNode(cfg);
        node.Register(Job("42", exclusive: true), false, 0, wall0);
        void ReadAt(long ms, ulong step)
        {
            SetCounters(step * 100, step * 10, step);
            node.Buffer.Read(_slot!, ms * Ms, wall0 + ms * Ms);
        }
        ReadAt(100, 1);
        ReadAt(200, 2);
        SetCounters(400, 40, 4);
        node.Snapshot(400 * Ms, wall0 + 400 * Ms); // reads once more at its instant (day 1)
        ReadAt(600, 6);                             // after midnight, before the snapshot that rolls the day
        SetCounters(700, 70, 7);
        node.Snapshot(700 * Ms, wall0 + 700 * Ms); // its read and its split go to day 1, then day 2's spool opens
        ReadAt(800, 8);
        SetCounters(900, 90, 9);
        node.Close(900 * Ms, wall0 + 900 * Ms);

        var days = Directory.GetDirectories(Path.Combine(node.StateRoot, NodeSpool.Directory)).Order().ToArray();
        Assert.Equal(["2024-10-03", "2024-10-04"], days.Select(Path.GetFileName));
        Assert.Equal("node", SpoolWriter.ReadMeta(days[1]).Series[0].Consumer); // each day's spool starts with the node's reads
        Assert.Equal("node", SpoolWriter.ReadMeta(days[0]).Series[0].Consumer);
        List<(long Wall, long Interval, long Value)> NodePackage(string dir) => Rows(dir)
            .Where(x => x.Consumer == "node" && x.Resource == "cpu_package:0").Select(x => (x.R.WallNs, x.R.IntervalNs, x.R.Value)).ToList();
        Assert.Equal([(wall0 + 100 * Ms, 100 * Ms, 100), (wall0 + 200 * Ms, 100 * Ms, 100), (wall0 + 400 * Ms, 200 * Ms, 200),
                      (wall0 + 600 * Ms, 200 * Ms, 200), (wall0 + 700 * Ms, 100 * Ms, 100)], NodePackage(days[0])); // the roll follows the read
        Assert.Equal([(wall0 + 800 * Ms, 100 * Ms, 100), (wall0 + 900 * Ms, 100 * Ms, 100)], NodePackage(days[1]));
        // The job's file holds the same reads, every channel, one spool across the midnight.
        var nodeRows = Rows(days[0]).Concat(Rows(days[1])).Where(x => x.Consumer == "node").Select(x => (x.Resource, x.R)).ToList();
        var jobRows = Rows(JobDir(cfg, "42")).Where(x => x.Consumer == "node").Select(x => (x.Resource, x.R)).ToList();
        Assert.Equal(21, jobRows.Count); // 7 reads × 3 counters
        Assert.Equal(nodeRows.Select(x => (x.Resource, x.R.WallNs, x.R.IntervalNs, x.R.Value, x.R.Flags)),
            jobRows.Select(x => (x.Resource, x.R.WallNs, x.R.IntervalNs, x.R.Value, x.R.Flags)));
        Assert.Equal(9, jobRows.Where(x => x.Resource == "dram:0").Sum(x => x.R.Value));
    }

    [Theory]
    [InlineData(0)]    // raw storage: the node's reads stored as read, split per period
    [InlineData(300)]  // aggregated: one node row per period
    public void EachDaysNodeFileConservesWhenAPeriodStraddlesMidnight(int storageMs)
    {
        const long Day = 86_400_000 * Ms;
        long wall0 = 20_000 * Day - 500 * Ms; // 0.5 s before a UTC midnight
        var cfg = Config(storageMs, maxPowerW: 1);
        cfg.Sampler.AttributionPeriodMs = 300;
        SetCounters(0, 0, 0);
        using var node = NewNode(cfg);
        node.Register(Job("42"), false, 0, wall0);
        node.Register(Job("43"), false, 0, wall0);
        for (ulong step = 1; step <= 9; step++)
        {
            SetJobCpu("42", step * 30 * Ms); // 0.3 and 0.1 CPU: a real split, with some unattributed
            SetJobCpu("43", step * 10 * Ms);
            SetCounters(step * 100, step * 10, step);
            long ms = (long)step * 100;
            if (ms % 300 == 0) node.Snapshot(ms * Ms, wall0 + ms * Ms); // 300, 600 (after midnight: straddles it), 900
            else node.Buffer.Read(_slot!, ms * Ms, wall0 + ms * Ms);
        }
        node.Flush();

        var days = Directory.GetDirectories(Path.Combine(node.StateRoot, NodeSpool.Directory)).Order().ToArray();
        Assert.Equal(2, days.Length);
        var totals = new Dictionary<string, long>();
        foreach (string day in days)
            foreach (var g in Rows(day).GroupBy(x => x.Resource))
            {
                long nodeJ = g.Where(x => x.Consumer == SpoolSeries.NodeConsumer).Sum(x => x.R.Value);
                long parts = g.Where(x => x.Consumer != SpoolSeries.NodeConsumer).Sum(x => x.R.Value);
                Assert.True(nodeJ == parts, $"{Path.GetFileName(day)} {g.Key}: node {nodeJ} != jobs + unattributed {parts}");
                totals[g.Key] = totals.GetValueOrDefault(g.Key) + nodeJ;
            }
        Assert.Equal(900, totals["cpu_package:0"]);
        Assert.Equal(9, totals["dram:0"]);
        // The period that straddles midnight (300-600 ms) stays whole in the old day's file.
        Assert.Equal(600, Rows(days[0]).Where(x => x.Consumer == SpoolSeries.NodeConsumer && x.Resource == "cpu_package:0").Sum(x => x.R.Value));
        node.Close(900 * Ms, wall0 + 900 * Ms);
    }

    [Fact]
    public void AFailedReadFlagsTheRecoveringDeltaWithItsWholeIntervalInRawRecords()
    {
        var cfg = Config(storageMs: 0, maxPowerW: 1); // raw storage; 1 W: no wrap doubt on the 1 J counters
        SetCounters(0, 0, 0);
        using var node = NewNode(cfg);
        node.Register(Job("42", exclusive: true), false, 0);
        SetCounters(100, 10, 0);
        File.WriteAllText(_powercap.PathOf("intel-rapl:0:1", "energy_uj"), "garbage\n"); // dram unreadable
        node.Buffer.Read(_slot!, 100 * Ms, 100 * Ms);
        node.Buffer.Read(_slot!, 200 * Ms, 200 * Ms);
        SetCounters(300, 30, 20);
        node.Buffer.Read(_slot!, 300 * Ms, 300 * Ms);
        node.Snapshot(1000 * Ms, 1000 * Ms);
        node.Flush();

        var dram = Rows(JobDir(cfg, "42")).Where(x => x.Consumer == "node" && x.Resource == "dram:0").ToList();
        // The first good read after 300 ms: the whole 300 ms interval, the energy, and the read-error flag.
        Assert.Equal(300 * Ms, dram[0].R.IntervalNs);
        Assert.Equal(20, dram[0].R.Value);
        Assert.Equal(SpoolFlags.ReadError, dram[0].R.Flags);
        var package = Rows(JobDir(cfg, "42")).Where(x => x.Consumer == "node" && x.Resource == "cpu_package:0").ToList();
        Assert.Equal(new long[] { 100 * Ms, 100 * Ms, 100 * Ms }, package.Take(3).Select(x => x.R.IntervalNs));
        Assert.All(package, x => Assert.Equal(SpoolFlags.None, x.R.Flags));
        // The period's share row carries the flag of the channel that failed in it.
        Assert.Equal(SpoolFlags.ReadError, Rows(JobDir(cfg, "42")).Single(x => x.Consumer == "job:42" && x.Resource == "dram:0").R.Flags);
        node.Close(1000 * Ms, 1000 * Ms);
    }

    /// <summary>
    /// The same at aggregated storage, through the daemon's GPU slot (a fake NVML): a GPU at a steady 100 W whose reads fail
    /// from 1.25 s to 3 s. The energy of the failed periods came back on the 4 s row, which said 1 s (the period's length):
    /// 300 J over 1 s, and the job's MaxPower was 300 W. Its row now says the 3 s its energy covers, and the failed
    /// periods' rows the 0 s theirs covered.
    /// </summary>
    [Fact]
    public void AChannelBackFromFailedReadsStoresTheTimeItsEnergyCoversSoThePeakStaysTrue()
    {
        const long Wall0 = 1_700_000_000_000 * Ms;
        using var rig = new NodeRig();
        var cfg = rig.Config(storageMs: 1000);
        rig.AtZero("42");
        using var node = rig.NewNodeWithGpu(cfg);
        node.Register(Job("42", exclusive: true), false, 0, Wall0);
        for (long t = 250; t <= 4000; t += 250)
        {
            if (t is > 1000 and <= 3000) rig.Nvml!.Set("e0", "err:999");
            else rig.Nvml!.Set("e0", (ulong)t * 100); // 100 mJ a ms
            node.Buffer.Read(rig.Gpu!, t * Ms, Wall0 + t * Ms);
            if (t % 1000 == 0) node.Snapshot(t * Ms, Wall0 + t * Ms);
        }
        var end = node.End(Job("42").Key, true, "", 4000 * Ms, Wall0 + 4000 * Ms)!;
        node.Close(4000 * Ms, Wall0 + 4000 * Ms);

        Assert.Equal(100.0, end.Record!.MaxPowerW, 9);
        var rows = ReadOrderTests.Series(end.ParquetPath)[("job:42", "gpu:0000:3b:00.0")]
            .Select(r => ((r.EndUs - Wall0 / 1000) / 1000, r.IntervalUs / 1000, r.Raw, (SpoolFlags)r.Flags));
        Assert.Equal(new (long, long, long, SpoolFlags)[]
        {
            (1000, 1000, 100_000, SpoolFlags.None),
            (2000, 0, 0, SpoolFlags.ReadError),
            (3000, 0, 0, SpoolFlags.ReadError),
            (4000, 3000, 300_000, SpoolFlags.ReadError),
        }, rows);
        Assert.Equal(400.0, end.Record.Energy.GpuJ, 9);
        Assert.Equal(4.0, end.Record.ElapsedS, 9); // the package's rows, one period each
    }

    /// <summary>
    /// A job registered mid-period (aggregated storage, 1 s) got rows for the whole period: its first interval began at the
    /// previous snapshot, 400 ms before it existed, so its Start was 400 ms early and its Elapsed 400 ms long, and the GPU it
    /// holds gave it the whole period's energy, 40 J of it from before its registration (200 J instead of 160). Its
    /// registration now closes the period, as an end does: its first interval starts there, the GPU's energy before it is
    /// nobody's (unattributed), and every interval of its file and of the node's conserves.
    /// </summary>
    [Fact]
    public void AJobRegisteredMidPeriodStartsAtItsRegistrationAndGetsNoEnergyFromBeforeIt()
    {
        const long Wall0 = 1_700_000_000_000 * Ms;
        const string Gpu0 = "gpu:0000:3b:00.0";
        using var rig = new NodeRig();
        var cfg = rig.Config(storageMs: 1000);
        rig.AtZero("42", "43");
        using var node = rig.NewNodeWithGpu(cfg);
        void Gpu(long from, long to)
        {
            for (long t = from; t <= to; t += 100) // its own thread at 10 Hz; a steady 100 W: 100 mJ a ms
            {
                rig.Nvml!.Set("e0", (ulong)t * 100);
                node.Buffer.Read(rig.Gpu!, t * Ms, Wall0 + t * Ms);
            }
        }
        node.Register(Job("42"), false, 0, Wall0);
        Gpu(100, 400);
        rig.SetJobCpu("42", 200 * Ms);   // 0-400 ms: job 42 200 ms of the node's 300 ms busy; 0.4 J of package
        rig.Proc.SetStat(30, 0);
        rig.SetCounters(400_000, 0, 0);
        node.Register(Job("43") with { Gpus = "0" }, false, 400 * Ms, Wall0 + 400 * Ms);
        Gpu(500, 1000);
        rig.SetJobCpu("42", 300 * Ms);   // 400-1000 ms: job 42 100 ms, job 43 300 ms of 500 ms busy; 0.6 J
        rig.SetJobCpu("43", 300 * Ms);
        rig.Proc.SetStat(80, 0);
        rig.SetCounters(1_000_000, 0, 0);
        node.Snapshot(1000 * Ms, Wall0 + 1000 * Ms);
        Gpu(1100, 2000);
        rig.SetJobCpu("43", 800 * Ms);   // 1-2 s: job 43 500 ms of 1 s busy; 1 J
        rig.Proc.SetStat(180, 0);
        rig.SetCounters(2_000_000, 0, 0);
        var end = node.End(Job("43").Key, true, "", 2000 * Ms, Wall0 + 2000 * Ms)!;
        node.Close(2000 * Ms, Wall0 + 2000 * Ms);

        var job = ReadOrderTests.Series(end.ParquetPath);
        (long, long, long)[] Rows43(string domain) =>
            job[("job:43", domain)].Select(r => ((r.EndUs - Wall0 / 1000) / 1000, r.IntervalUs / 1000, r.Raw)).ToArray();
        Assert.Equal(new (long, long, long)[] { (1000, 600, 60_000), (2000, 1000, 100_000) }, Rows43(Gpu0));
        Assert.Equal(new (long, long, long)[] { (1000, 600, 360_000), (2000, 1000, 500_000) }, Rows43("cpu_package:0"));
        var row = end.Record!;
        Assert.Equal(Clock.FromWallNs(Wall0 + 400 * Ms), row.Start);
        Assert.Equal(1.6, row.ElapsedS, 9);
        Assert.Equal(160.0, row.Energy.GpuJ, 9);
        Assert.Equal(0.86, row.Energy.PackageJ, 12);

        // The node's file: the registration ended a period, whose GPU energy is nobody's; every interval conserves.
        string nodeFile = Directory.GetFiles(cfg.Paths.DataDir, "node1.*.parquet", SearchOption.AllDirectories).Single();
        Conservation.AssertEveryInterval(end.ParquetPath, 0); // job 43 shared the node: its own share only, nothing to check
        Conservation.AssertEveryInterval(nodeFile, 3 * 4); // its three periods, per counter (package, cores, DRAM, GPU)
        var nodeSeries = ReadOrderTests.Series(nodeFile);
        Assert.Equal(new long[] { 40_000, 0, 0 }, nodeSeries[("unattributed", Gpu0)].Select(r => r.Raw));
        Assert.Equal(new long[] { 266_666, 120_000, 0 }, nodeSeries[("job:42", "cpu_package:0")].Select(r => r.Raw));
        Assert.Equal(new long[] { 400, 600, 1000 }, nodeSeries[("node", "cpu_package:0")].Select(r => r.IntervalUs / 1000));
    }

    /// <summary>
    /// A registration within one /proc/stat tick (10 ms) of the last snapshot closes no period (a period that short is split
    /// by 0 or 1 tick per CPU): the job's first interval starts at that snapshot, at most a tick before it existed.
    /// </summary>
    [Fact]
    public void ARegistrationWithinATickOfASnapshotJoinsThePeriodThatSnapshotStarted()
    {
        var cfg = Config();
        _rig.AtZero("42", "43");
        using var node = NewNode(cfg);
        node.Register(Job("42"), false, 0, 0);
        SetCounters(100_000, 0, 0);
        node.Snapshot(1000 * Ms, 1000 * Ms);
        node.Register(Job("43"), false, 1009 * Ms, 1009 * Ms);
        SetJobCpu("43", 500 * Ms);
        _proc.SetStat(100, 0);
        SetCounters(200_000, 0, 0);
        node.Snapshot(2000 * Ms, 2000 * Ms);
        node.Flush();

        Assert.Equal(new[] { 1000 * Ms, 2000 * Ms }, Rows(NodeDir(node)).Select(x => x.R.WallNs).Distinct());
        var first = Rows(JobDir(cfg, "43")).Where(x => x.Resource == "cpu_package:0").Select(x => (x.R.WallNs / Ms, x.R.IntervalNs / Ms, x.R.Value));
        Assert.Equal(new (long, long, long)[] { (2000, 1000, 50_000) }, first);
        node.Close(2000 * Ms, 2000 * Ms);
    }

    [Fact]
    public void TheLowerBoundFlagIsOnTheRowOfTheStall()
    {
        var cfg = Config(maxPowerW: 1); // 1 W on a 1 J counter: a gap ≥ 1 s could hide a second wrap
        SetCounters(0, 0, 0);
        using var node = NewNode(cfg);
        node.Register(Job("42", exclusive: true), false, 0);
        SetCounters(500_000, 0, 0);
        node.Snapshot(900 * Ms, 900 * Ms);
        SetCounters(100_000, 0, 0);                   // the sampler was stopped 10 s: wrapped at least once
        node.Snapshot(10_900 * Ms, 10_900 * Ms);    // the snapshot reads the counters itself
        SetCounters(200_000, 0, 0);
        node.Snapshot(11_800 * Ms, 11_800 * Ms);
        node.Flush();

        var rows = Rows(JobDir(cfg, "42")).Where(x => x.Consumer == "job:42" && x.Resource == "cpu_package:0").ToList();
        Assert.Equal(new[] { 900 * Ms, 10_000 * Ms, 900 * Ms }, rows.Select(x => x.R.IntervalNs));
        Assert.Equal(new long[] { 500_000, 600_000, 100_000 }, rows.Select(x => x.R.Value));
        Assert.Equal(new[] { SpoolFlags.None, SpoolFlags.WrapAmbiguous, SpoolFlags.None }, rows.Select(x => x.R.Flags));
        node.Close(11_800 * Ms, 11_800 * Ms);
    }

    [Fact]
    public void EndClosesTheJobsLastPeriodAtThatInstant()
    {
        var cfg = Config();
        SetCounters(0, 0, 0);
        _proc.SetStat(0, 0);
        using var node = NewNode(cfg);
        node.Register(Job("42", exclusive: true), false, 0);
        SetCounters(1_000, 0, 0);
        var outcome = node.End(Job("42").Key, complete: true, "", 300 * Ms, 300 * Ms);
        Assert.NotNull(outcome);
        Assert.Equal("complete", outcome.Status);
        Assert.Equal(0.001, outcome.Record!.Energy.PackageJ, 12);
        Assert.Equal(0, node.JobCount);
        Assert.Null(node.End(Job("42").Key, true, "", 400 * Ms, 400 * Ms)); // already ended
        node.Close(400 * Ms, 400 * Ms);
    }

    [Fact]
    public void ARestartedSamplerRecoversRegisteredJobsAndTheirRowIsPartial()
    {
        var cfg = Config();
        SetCounters(0, 0, 0);
        var first = NewNode(cfg);
        first.Register(Job("42", exclusive: true), false, 0);
        SetCounters(1_000, 0, 0);
        first.Snapshot(1000 * Ms, 1000 * Ms);
        first.Flush(); // then killed: no Close

        var recovered = NodeSampler.Unfinished(cfg.Paths.StateDir).ToList();
        Assert.Equal("42", Assert.Single(recovered).Job.JobId);
        using var second = NewNode(cfg);
        second.Register(recovered[0], recovered: true, 0);
        SetCounters(3_000, 0, 0);
        second.Snapshot(1000 * Ms, 3000 * Ms);
        var outcome = second.End(recovered[0].Key, true, "", 1500 * Ms, 3500 * Ms)!;
        Assert.Equal("partial", outcome.Status);
        Assert.Contains("restarted during the job", outcome.Reason);
        Assert.Equal(0.001 + 0.002, outcome.Record!.Energy.PackageJ, 12); // before the kill + after the restart
        second.Close(1500 * Ms, 3500 * Ms);
    }

    /// <summary>
    /// A restarted sampler that finds a recovered job's meta.json unreadable (damaged, emptied, removed) cannot know what
    /// the records before the restart are: it sets them aside and the row says what was lost and why. It used to start
    /// the series list anew over the old records, which then read as whatever series got their ids: here job 42 alone
    /// first (its file: share, node and unattributed per counter), then sharing the node with job 43 (shares only), so
    /// the old node package records read as job 42's cores.
    /// </summary>
    [Theory]
    [InlineData("")]
    [InlineData("{\"format_version\": 1, \"series\": [")]
    [InlineData(null)]
    public void ARecoveredJobWhoseMetaIsUnreadableCountsOnlyWhatItCanRead(string? damaged)
    {
        var cfg = Config();
        SetCounters(0, 0, 0);
        _proc.SetStat(0, 0);
        SetJobCpu("42", 0);
        var first = NewNode(cfg);
        first.Register(Job("42"), false, 0);
        SetCounters(500_000, 300_000, 100_000);
        _proc.SetStat(100, 0);
        SetJobCpu("42", 1_000_000_000); // the node's whole busy second: all of it is the job's
        first.Snapshot(1000 * Ms, 1000 * Ms);
        first.Flush(); // then killed: no Close
        string dir = JobDir(cfg, "slurm", "42");
        string meta = Path.Combine(dir, SpoolWriter.MetaFile);
        if (damaged is null) File.Delete(meta);
        else File.WriteAllText(meta, damaged);

        var recovered = Assert.Single(NodeSampler.Unfinished(cfg.Paths.StateDir));
        using var second = NewNode(cfg);
        second.Register(recovered, recovered: true, 0);
        SetJobCpu("43", 0);
        second.Register(Job("43"), false, 0);
        Assert.Equal(9L * SpoolRecord.Size, new FileInfo(Path.Combine(dir, SpoolWriter.RecordsFile + ".unreadable")).Length); // set aside
        SetCounters(600_000, 300_000, 100_000);
        _proc.SetStat(200, 0);
        SetJobCpu("42", 2_000_000_000); // job 42 again the whole busy second, job 43 nothing
        second.Snapshot(1000 * Ms, 2000 * Ms);
        var outcome = second.End(recovered.Key, true, "", 1000 * Ms, 2000 * Ms)!;
        second.End(Job("43").Key, true, "", 1000 * Ms, 2000 * Ms);
        second.Close(1000 * Ms, 2000 * Ms);

        Assert.Equal("partial", outcome.Status);
        Assert.Contains("meta.json could not be read when the sampler restarted", outcome.Reason);
        Assert.Contains("the 9 record(s) from before the restart are not counted", outcome.Reason);
        Assert.True(File.Exists(Path.Combine(dir, SpoolWriter.RecordsFile + ".unreadable"))); // kept with its state dir, as the row says
        var e = outcome.Record!.Energy;
        Assert.Equal(0.1, e.PackageJ, 12); // the period after the restart only
        Assert.Equal((0.0, 0.0), (e.CoreJ, e.DramJ));
    }

    /// <summary>
    /// An exec's relabel (its first period with another job) reaches meta.json at the flush that writes that period's
    /// records, before them (SeriesSpool.MetaChanged). A sampler killed before that flush loses the shared period and
    /// its label together: the recovered exec, alone, is "exclusive", which every record in its file is; killed after
    /// it, the recovered exec says "cgroup-cpu-time" (SharedBefore), never "exclusive" for a file that holds a shared period.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ARecoveredExecSaysItSharedTheNodeExactlyWhenItsFileHoldsASharedPeriod(bool flushedBeforeTheKill)
    {
        var cfg = Config(maxPowerW: 1); // ≤ 1 W on this 1 J counter: no ambiguous wrap in a 1 s period
        SetCounters(0, 0, 0);
        _proc.SetStat(0, 0);
        SetJobCpu("7", 0);
        SetJobCpu("42", 0);
        var exec = new JobRegistration(new JobIdentity("exec", "test", "7", "alice", 1000, "node1"), null, null, false, false, 1) { ExclusiveWhenAlone = true };
        var first = NewNode(cfg);
        first.Register(exec, false, 0);
        SetCounters(100_000, 0, 0);
        _proc.SetStat(100, 0);
        SetJobCpu("7", 500_000_000);
        first.Snapshot(1000 * Ms, 1000 * Ms); // alone: the whole node, 0.1 J
        first.Flush();
        first.Register(Job("42"), false, 1000 * Ms, 1000 * Ms);
        SetCounters(200_000, 0, 0);
        _proc.SetStat(200, 0);
        SetJobCpu("7", 1_000_000_000);
        SetJobCpu("42", 250_000_000);
        first.Snapshot(2000 * Ms, 2000 * Ms); // shared: half of the node's busy second, 0.05 J
        var o42 = first.End(Job("42").Key, true, "", 2000 * Ms, 2000 * Ms)!;
        Assert.Equal("complete", o42.Status);
        if (flushedBeforeTheKill) first.Flush();
        Assert.Equal(flushedBeforeTheKill ? "cgroup-cpu-time" : "exclusive", SpoolWriter.ReadMeta(JobDir(cfg, "exec", "7")).AttributionMode);
        // killed: no Close

        var recovered = Assert.Single(NodeSampler.Unfinished(cfg.Paths.StateDir)); // job 42 was finalized
        using var second = NewNode(cfg);
        second.Register(recovered, recovered: true, 0);
        SetCounters(300_000, 0, 0);
        second.Snapshot(1000 * Ms, 3000 * Ms); // alone again: the whole node, 0.1 J
        var outcome = second.End(recovered.Key, true, "", 1000 * Ms, 3000 * Ms)!;
        Assert.Equal("partial", outcome.Status);
        Assert.Equal(flushedBeforeTheKill ? "cgroup-cpu-time" : "exclusive", outcome.Record!.AttributionMode);
        Assert.Equal(flushedBeforeTheKill ? 0.25 : 0.2, outcome.Record.Energy.PackageJ, 12);
        second.Close(1000 * Ms, 3000 * Ms);
    }

    [Fact]
    public void TickReadsAllocateNothing()
    {
        using var node = NewNode(Config());
        for (int i = 0; i < 5000; i++) node.Buffer.Read(_slot!, i * Ms, i * Ms); // warm-up (tiered JIT)
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 5000; i < 7000; i++) node.Buffer.Read(_slot!, i * Ms, i * Ms);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        node.Close(7000 * Ms, 7000 * Ms);
    }

    /// <summary>
    /// At raw storage the tick's reads go to the node's day spool: the first read after a raw job's registration opened
    /// that day (its files read and written, objects made) on the tick thread, SCHED_FIFO then. The registration opens
    /// it, and looks the day's node series up, so the tick's reads allocate nothing from the first.
    /// </summary>
    [Fact]
    public void TickReadsAllocateNothingAtRawStorageFromTheFirstRead()
    {
        const long Wall = 1_700_000_000_000 * Ms;
        var cfg = Config();
        foreach (string id in new[] { "42", "43", "44", "45" }) SetJobCpu(id, 0);
        using (var warm = NewNode(cfg)) // the raw read path compiled (tiered JIT); the day and its node series made
        {
            warm.Register(Job("42", raw: true), false, 0, Wall);
            for (int i = 1; i <= 5000; i++) warm.Buffer.Read(_slot!, i * Ms, Wall + i * Ms);
            warm.End(Job("42").Key, true, "", 5000 * Ms, Wall + 5000 * Ms);
            warm.Close(5000 * Ms, Wall + 5000 * Ms);
        }
        // A fresh node's first 2000 reads, up to three times: an allocation of the first read path (the day opened by the
        // tick) is in every fresh node's window; a one-off of the runtime's under a parallel test run (seen once in CI,
        // 5856 bytes in one window, none in any run alone) is not.
        var windows = new List<long>();
        for (int attempt = 0; attempt < 3 && (windows.Count == 0 || windows[^1] != 0); attempt++)
        {
            long start = Wall + (6000 + attempt * 3000) * Ms;
            using var node = NewNode(cfg);
            node.Register(Job($"{43 + attempt}", raw: true), false, 0, start);
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 1; i <= 2000; i++) node.Buffer.Read(_slot!, i * Ms, start + i * Ms);
            windows.Add(GC.GetAllocatedBytesForCurrentThread() - before);
            node.Close(2000 * Ms, start + 2000 * Ms);
        }
        Assert.True(windows[^1] == 0, $"bytes allocated by the first 2000 reads of fresh nodes: {string.Join(", ", windows)}");
    }

    [Fact]
    public void TheTickRateFollowsTheNeed()
    {
        var cfg = Config(maxPowerW: 1000);
        using (var node = NewNode(cfg)) // 1 J counters at 1000 W: a wrap every 1 ms, reads needed at 2 kHz, capped at 1 kHz
        {
            Assert.Equal(1000, node.TickHz);
            node.Close(0, 0);
        }
        using var big = new PowercapTree();
        big.Zone("intel-rapl:0", "package-0", 262_143_328_850);
        var slot = new SourceSlot(new RaplSource(PowercapDiscovery.Discover(big.Root).Zones), 1000, false, 1000);
        using var quiet = new NodeSampler(cfg, new SourceSet([slot], "p", "", []), 0);
        Assert.Equal(0, quiet.TickHz);             // 262 kJ at 1000 W: the 1 s snapshots read often enough
        Assert.False(quiet.FifoTick);
        quiet.Register(Job("7", exclusive: true, raw: true), false, 0);
        Assert.Equal(1000, quiet.TickHz);          // a job asked for raw storage
        Assert.Null(quiet.Set("rapl_hz", "250"));
        Assert.Equal(250, quiet.TickHz);           // the admin's cap
        Assert.NotNull(quiet.Set("rapl_hz", "5000"));
        Assert.Equal(250, quiet.TickHz);
        quiet.End(Job("7").Key, true, "", 10 * Ms, 10 * Ms);
        Assert.Equal(0, quiet.TickHz);
        quiet.Close(10 * Ms, 10 * Ms);
    }

    // ---------------------------------------------------------------- ctl set, applied while sampling (README "The node sampler")

    /// <summary>
    /// `parquet check` on every file of the run: the job's (its periods to the switch, to the snapshot, to its end, per
    /// counter) and the node's (those, its own before the registration and after the end: 5 periods × 3 counters), and the
    /// node's rows cover the whole run with nothing lost or counted twice (<see cref="AssertNodeRowsCoverTheRun"/>).
    /// </summary>
    private static void AssertEveryIntervalConserves(AlumetConfig cfg, SwitchedRun run)
    {
        var files = Directory.GetFiles(cfg.Paths.DataDir, "*.parquet", SearchOption.AllDirectories);
        Assert.Equal(2, files.Length);
        Assert.Contains(run.End.ParquetPath, files);
        Conservation.AssertEveryInterval(run.End.ParquetPath, 3 * 3);
        string nodeFile = files.Single(f => f != run.End.ParquetPath);
        Conservation.AssertEveryInterval(nodeFile, 5 * 3);
        var series = ReadOrderTests.Series(nodeFile);
        Assert.Equal((1_000_000L, 600_000L, 100_000L),
            (series[("node", "cpu_package:0")].Sum(r => r.Raw), series[("node", "cpu_cores:0")].Sum(r => r.Raw), series[("node", "dram:0")].Sum(r => r.Raw)));
        AssertNodeRowsCoverTheRun(cfg, run.StartNs, run.CloseNs, 3);
    }

    /// <summary>
    /// The node's rows, over its whole spool (every day), leave no time of the run out and count none twice: per counter,
    /// their intervals (ns, the monotonic time since the counter's read before: raw reads at raw storage, a period's
    /// reads at aggregated) add up to exactly the time from the sampler's prime (<paramref name="startNs"/>) to its last
    /// read (<paramref name="lastReadNs"/>). A period whose node row, or whose raw reads, were lost would leave its time out.
    /// </summary>
    internal static void AssertNodeRowsCoverTheRun(AlumetConfig cfg, long startNs, long lastReadNs, int counters)
    {
        var covered = Directory.GetDirectories(Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory))
            .SelectMany(day => Rows(day)).Where(x => x.Consumer == SpoolSeries.NodeConsumer)
            .GroupBy(x => x.Resource).ToDictionary(g => g.Key, g => g.Sum(x => x.R.IntervalNs));
        Assert.Equal(counters, covered.Count);
        foreach (var (resource, ns) in covered)
            Assert.True(ns == lastReadNs - startNs, $"{resource}: node rows cover {ns} ns of the run's {lastReadNs - startNs} ns");
    }

    /// <summary>A run of <see cref="SwitchStorageMidPeriod"/>: the job's end, the sampler's start (its prime) and its close (its last read).</summary>
    private sealed record SwitchedRun(JobFinalizer.Outcome End, long StartNs, long CloseNs);

    /// <summary>
    /// Switches raw storage with <c>ctl set storage_period_ms</c> between the two halves of a 1 J second of package (0.6 J
    /// of cores, 0.1 J of DRAM; job 42 alone on the node, half of the busy CPU time in each half), reading the counters
    /// only while the tick does (raw storage, or wraps to keep unambiguous), then ends the job. The daemon's own clocks:
    /// Set reads them, as when the socket calls it. The sampler started two /proc/stat ticks before the registration, so
    /// the registration closes the node's own first period whatever the test's speed (one closer than a tick closes
    /// none: NodeSampler.ShortestRegistrationPeriodNs, and the run then had 4 periods or 5 as the JIT was cold or warm).
    /// </summary>
    private static SwitchedRun SwitchStorageMidPeriod(NodeRig rig, AlumetConfig cfg, string storagePeriodMs)
    {
        rig.AtZero("42");
        long start = Clock.MonotonicNs() - 2 * Alumet.Hpc.Sources.Estimate.ProcStat.NsPerTick;
        using var node = rig.NewNode(cfg, startMonotonicNs: start);
        node.Register(NodeRig.Job("42"), false, Clock.MonotonicNs(), Clock.WallNs());
        void Half(ulong from)
        {
            for (ulong i = from; i < from + 500; i++)
            {
                rig.SetCounters(i * 1_000, i * 600, i * 100);
                if (node.TickHz > 0) Assert.True(node.Buffer.Read(rig.Slot!, Clock.MonotonicNs(), Clock.WallNs()), $"read {i} refused");
            }
        }
        Half(1);
        rig.Proc.SetStat(25, 0);
        rig.SetJobCpu("42", 125 * Ms);
        Assert.Null(node.Set("storage_period_ms", storagePeriodMs));
        Half(501);
        rig.Proc.SetStat(50, 0);
        rig.SetJobCpu("42", 250 * Ms);
        node.Snapshot(Clock.MonotonicNs(), Clock.WallNs());
        var end = node.End(NodeRig.Job("42").Key, true, "", Clock.MonotonicNs(), Clock.WallNs())!;
        long close = Clock.MonotonicNs();
        node.Close(close, Clock.WallNs());
        return new SwitchedRun(end, start, close);
    }

    /// <summary>
    /// Raw storage switched off mid-period: the period's reads were stored one by one up to the switch, and its node row
    /// at its end counted them again (node 1.5 J, jobs + unattributed 1 J in the job's file and in the node file).
    /// </summary>
    [Fact]
    public void SwitchingRawStorageOffWithCtlSetClosesThePeriodSoEveryIntervalConserves()
    {
        using var rig = new NodeRig();
        var cfg = rig.Config(storageMs: 0);
        var run = SwitchStorageMidPeriod(rig, cfg, "1000");

        AssertEveryIntervalConserves(cfg, run);
        Assert.Equal(0.5, run.End.Record!.Energy.PackageJ, 12); // half of the busy CPU time, in both halves
        Assert.Equal(1.1, run.End.Record.NodeEnergyJ, 12);      // package and DRAM, once
    }

    /// <summary>
    /// Raw storage switched on mid-period on a node whose counters wrap fast enough to be read between the periods (a 2 J
    /// range at 2 W: the tick reads at aggregated storage too, TheTickRateFollowsTheNeed): the reads before the switch
    /// were stored nowhere, yet counted in the period's split (node 0.5 J, jobs + unattributed 1 J).
    /// </summary>
    [Fact]
    public void SwitchingRawStorageOnWithCtlSetClosesThePeriodSoEveryIntervalConserves()
    {
        using var rig = new NodeRig(maxRange: 1_999_999);
        var cfg = rig.Config(storageMs: 1000, maxPowerW: 2);
        var run = SwitchStorageMidPeriod(rig, cfg, "0");

        AssertEveryIntervalConserves(cfg, run);
        Assert.Equal(0.5, run.End.Record!.Energy.PackageJ, 12);
        Assert.Equal(1.1, run.End.Record.NodeEnergyJ, 12);
    }

    /// <summary>
    /// Job 43 asked for raw storage beside job 42; the sampler hung, so 43's epilog finalized it from its spool, and the
    /// sampler drops it when it wakes (Housekeep). That switched raw storage off mid-period without closing it: the
    /// period's reads stored raw before the drop and its node row counted them twice in the node file.
    /// </summary>
    [Fact]
    public void DroppingAJobFinalizedElsewhereClosesThePeriodAtRawStorage()
    {
        using var rig = new NodeRig();
        var cfg = rig.Config(storageMs: 1000);
        rig.AtZero("42", "43");
        long start = Clock.MonotonicNs() - 2 * Alumet.Hpc.Sources.Estimate.ProcStat.NsPerTick; // 42's registration closes a period (SwitchStorageMidPeriod)
        using var node = rig.NewNode(cfg, startMonotonicNs: start);
        node.Register(Job("42"), false, Clock.MonotonicNs(), Clock.WallNs());
        node.Register(Job("43", raw: true), false, Clock.MonotonicNs(), Clock.WallNs());
        for (ulong i = 1; i <= 500; i++)
        {
            rig.SetCounters(i * 1_000, i * 600, i * 100);
            Assert.True(node.Buffer.Read(rig.Slot!, Clock.MonotonicNs(), Clock.WallNs()), $"read {i} refused");
        }
        node.Flush();
        SamplerLauncher.StopAndFinalize(Job("43").Job, cfg); // no sampler answers: its epilog finalizes it from its spool
        Assert.True(node.Housekeep(Clock.MonotonicNs()));
        Assert.Equal(1, node.JobCount);
        Assert.False(node.RawStorage);
        rig.SetCounters(1_000_000, 600_000, 100_000);
        node.Snapshot(Clock.MonotonicNs(), Clock.WallNs());
        node.End(Job("42").Key, true, "", Clock.MonotonicNs(), Clock.WallNs());
        long close = Clock.MonotonicNs();
        node.Close(close, Clock.WallNs());

        string nodeFile = Directory.GetFiles(cfg.Paths.DataDir, "node1.*.parquet", SearchOption.AllDirectories).Single();
        // Closed by 42's and 43's registrations, the drop, the snapshot, the end and the close: 6 periods × 3 counters.
        Conservation.AssertEveryInterval(nodeFile, 6 * 3);
        Assert.Equal(1_000_000, ReadOrderTests.Series(nodeFile)[("node", "cpu_package:0")].Sum(r => r.Raw));
        AssertNodeRowsCoverTheRun(cfg, start, close, 3);
    }

    /// <summary>
    /// Raw storage switched while the admin has paused the sampler (ctl pause), on a node at aggregated storage whose
    /// counters wrap fast enough that the tick reads them between the periods (a 2 J range at 2 W). No period closed at
    /// the pause, and a switch there closed none (none can while paused): registering job 43, which asks for raw storage,
    /// left the period's reads before the pause stored nowhere, raw after the resume, and no node row counted the first
    /// half (node 0.5 J, jobs + unattributed 1 J in the node file); 43 ending while paused left them stored raw, and the
    /// period's node row after the resume counted them again (node 1.5 J); <c>ctl set storage_period_ms=0</c> was refused.
    /// The pause closes the period and refuses every read: the switch comes in a period with no read yet.
    /// </summary>
    [Theory]
    [InlineData(PausedSwitch.RegisterRawJob, true, 6)] // 42's registration, the pause, the snapshot, 43's end, 42's end, the close
    [InlineData(PausedSwitch.EndRawJob, false, 6)]     // 42's and 43's registrations, the pause, the snapshot, 42's end, the close
    [InlineData(PausedSwitch.CtlSet, true, 5)]         // 42's registration, the pause, the snapshot, 42's end, the close
    public void RawStorageSwitchedWhilePausedKeepsEveryReadOnce(PausedSwitch how, bool rawWhilePaused, int periods)
    {
        using var rig = new NodeRig(maxRange: 1_999_999);
        var cfg = rig.Config(storageMs: 1000, maxPowerW: 2);
        var run = SwitchWhilePaused(rig, cfg, how);

        Assert.Equal(rawWhilePaused, run.RawWhilePaused);
        // The node file conserves in every interval and its node rows hold the whole second, once, over the whole run.
        string nodeFile = Directory.GetFiles(cfg.Paths.DataDir, "node1.*.parquet", SearchOption.AllDirectories).Single();
        Conservation.AssertEveryInterval(nodeFile, periods * 3);
        var series = ReadOrderTests.Series(nodeFile);
        Assert.Equal((1_000_000L, 600_000L, 100_000L),
            (series[("node", "cpu_package:0")].Sum(r => r.Raw), series[("node", "cpu_cores:0")].Sum(r => r.Raw), series[("node", "dram:0")].Sum(r => r.Raw)));
        AssertNodeRowsCoverTheRun(cfg, run.StartNs, run.CloseNs, 3);
        // So does every job file that holds node rows (a job left alone at raw storage gets the node's reads).
        var o = new StringWriter();
        var e = new StringWriter();
        var jobFiles = Directory.GetFiles(cfg.Paths.DataDir, "slurm.*.parquet", SearchOption.AllDirectories);
        Assert.True(jobFiles.Length > 0 && Alumet.Hpc.Commands.ParquetCommand.Check(jobFiles, o, e) == 0 && e.ToString() == "", $"{o}{e}");
        Assert.False(run.ReadWhilePaused, "a read after the pause was taken");
    }

    public enum PausedSwitch { RegisterRawJob, EndRawJob, CtlSet }

    private sealed record PausedRun(long StartNs, long CloseNs, bool RawWhilePaused, bool ReadWhilePaused);

    /// <summary>
    /// Job 42 (and 43, which asks for raw storage) on a node at aggregated storage whose tick reads the counters (wraps):
    /// 0.5 J of package (0.3 J of cores, 0.05 J of DRAM) read, then ctl pause, raw storage switched while paused (43
    /// registered or ended, or ctl set), resume, 0.5 J more read, a snapshot, the ends, the close. The daemon's clocks.
    /// </summary>
    private static PausedRun SwitchWhilePaused(NodeRig rig, AlumetConfig cfg, PausedSwitch how)
    {
        rig.AtZero("42", "43");
        long start = Clock.MonotonicNs() - 2 * Alumet.Hpc.Sources.Estimate.ProcStat.NsPerTick; // 42's registration closes a period (SwitchStorageMidPeriod)
        using var node = rig.NewNode(cfg, startMonotonicNs: start);
        node.Register(NodeRig.Job("42"), false, Clock.MonotonicNs(), Clock.WallNs());
        if (how == PausedSwitch.EndRawJob) node.Register(NodeRig.Job("43", raw: true), false, Clock.MonotonicNs(), Clock.WallNs());
        void Reads(ulong from)
        {
            for (ulong i = from; i < from + 500; i++)
            {
                rig.SetCounters(i * 1_000, i * 600, i * 100);
                Assert.True(node.TickHz > 0);
                Assert.True(node.Buffer.Read(rig.Slot!, Clock.MonotonicNs(), Clock.WallNs()), $"read {i} refused");
            }
        }
        Reads(1);
        rig.Proc.SetStat(25, 0);
        rig.SetJobCpu("42", 125 * Ms);
        node.Pause(Clock.MonotonicNs(), Clock.WallNs());
        rig.SetCounters(500_500, 300_300, 50_050);
        // A tick that read the rate before the pause (the daemon tells the tick loop after Pause): refused, so the period
        // open while paused holds no read before the switch; stored, it was counted twice or nowhere. Its energy is read
        // after the resume.
        bool readWhilePaused = node.Buffer.Read(rig.Slot!, Clock.MonotonicNs(), Clock.WallNs());
        switch (how)
        {
            case PausedSwitch.RegisterRawJob: node.Register(NodeRig.Job("43", raw: true), false, Clock.MonotonicNs(), Clock.WallNs()); break;
            case PausedSwitch.EndRawJob: node.End(NodeRig.Job("43").Key, true, "", Clock.MonotonicNs(), Clock.WallNs()); break;
            case PausedSwitch.CtlSet: Assert.Null(node.Set("storage_period_ms", "0")); break;
        }
        bool raw = node.RawStorage;
        node.Resume();
        Reads(501);
        rig.Proc.SetStat(50, 0);
        rig.SetJobCpu("42", 250 * Ms);
        node.Snapshot(Clock.MonotonicNs(), Clock.WallNs());
        if (how == PausedSwitch.RegisterRawJob) node.End(NodeRig.Job("43").Key, true, "", Clock.MonotonicNs(), Clock.WallNs());
        node.End(NodeRig.Job("42").Key, true, "", Clock.MonotonicNs(), Clock.WallNs());
        long close = Clock.MonotonicNs();
        node.Close(close, Clock.WallNs());
        return new PausedRun(start, close, raw, readWhilePaused);
    }

    /// <summary>
    /// <c>ctl set max_power_w</c>: the README says to raise it on a domain that draws more than 1 kW. It changed only the
    /// tick's rate, never the bound the counters judge a reading by: a package drawing 1.5 kW kept every reading rejected
    /// (0 counted, flags=4) until the sampler restarted. Lowered again, a 1.5 kW second is impossible again.
    /// </summary>
    [Fact]
    public void MaxPowerSetWhileSamplingBoundsTheNextReading()
    {
        using var rig = new NodeRig();
        var cfg = rig.Config(maxPowerW: 1000);
        rig.AtZero("42");
        using var node = rig.NewNode(cfg);
        node.Register(Job("42", exclusive: true), false, 0);
        Assert.Null(node.Set("max_power_w", "2000"));
        rig.SetCounters(1_500_000_000, 0, 0); // 1.5 kJ in 1 s: above 1000 W × (1 s + 0.1 s of slack), below 2000 W × that
        node.Snapshot(1000 * Ms, 1000 * Ms);
        Assert.Null(node.Set("max_power_w", "1000"));
        rig.SetCounters(3_000_000_000, 0, 0);
        node.Snapshot(2000 * Ms, 2000 * Ms);
        node.Flush();

        var package = Rows(JobDir(cfg, "42"))
            .Where(x => x.Consumer == "job:42" && x.Resource == "cpu_package:0")
            .Select(x => (x.R.WallNs / Ms, x.R.Value, x.R.Flags)).ToArray();
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 1_500_000_000, SpoolFlags.None), (2000, 0, SpoolFlags.Implausible) }, package);
        node.Close(2000 * Ms, 2000 * Ms);
    }
}
