using Alumet.Hpc.Attribution;
using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Sampling;

namespace Alumet.Hpc.Tests.Attribution;

/// <summary>
/// The period's split as the node sampler makes it (Register, Snapshot, the spools' rows), over generated counters,
/// /proc/stat and Slurm-layout v1 cgroups: the job and step CPU times the snapshot reads, and what it makes of them, in
/// exact integers (README, "Attribution").
/// </summary>
public sealed class SnapshotSplitTests : IDisposable
{
    private const long Ms = 1_000_000;
    private const string JobDir42 = "cpuacct/slurm/uid_1000/job_42", JobDir43 = "cpuacct/slurm/uid_1001/job_43";
    private readonly NodeRig _rig = new();

    public void Dispose() => _rig.Dispose();

    private static string JobDir(AlumetConfig cfg, string id) => NodeRig.Job(id).Job.StateDirectory(cfg.Paths.StateDir);

    private static string NodeDir(NodeSampler node) => Directory.GetDirectories(Path.Combine(node.StateRoot, NodeSpool.Directory)).Single();

    /// <summary>Package rows of one consumer in a spool, in time order: (end of the interval in ms, value, flags).</summary>
    private static (long Ms, long Value, SpoolFlags Flags)[] Package(string dir, string consumer) =>
        NodeSamplerTests.Rows(dir).Where(x => x.Consumer == consumer && x.Resource == "cpu_package:0")
            .Select(x => (x.R.WallNs / Ms, x.R.Value, x.R.Flags)).ToArray();

    /// <summary>A node sampler from zero counters, /proc/stat and job CPU times, with <paramref name="jobs"/> registered.</summary>
    private NodeSampler FromZero(out AlumetConfig cfg, string[] jobs, Func<DirectoryJobLocator, IJobCgroupLocator>? wrapLocator = null)
    {
        cfg = _rig.Config();
        _rig.SetCounters(0, 0, 0);
        _rig.Proc.SetStat(0, 0);
        foreach (string id in jobs) _rig.SetJobCpu(id, 0);
        var node = _rig.NewNode(cfg, wrapLocator: wrapLocator);
        foreach (string id in jobs) node.Register(NodeRig.Job(id), false, 0);
        return node;
    }

    /// <summary>Runs <paramref name="onListing"/> when the sampler lists a job's steps: CPU time that runs while it reads.</summary>
    private sealed class RunsWhileListing(DirectoryJobLocator inner, Action onListing) : IJobCgroupLocator, IStepCgroupLocator
    {
        public JobCgroup? Find(JobIdentity job, out Presence presence) => inner.Find(job, out presence);
        public IReadOnlyList<StepCgroup> EnumerateSteps(JobCgroup job)
        {
            onListing();
            return inner.EnumerateSteps(job);
        }
    }

    /// <summary>
    /// Steps are parts of their job's share: in no period may they add up to more. The snapshot read the job's cgroup
    /// first and its steps after, so CPU time that ran in between was in the steps and not in the job (period 1: step 0
    /// runs 100 ms while the steps are listed); and a step's time that ran between the reads of one period reaches the
    /// step one period after its job (period 2: the steps' reads moved 150 ms, the job's 100 ms).
    /// </summary>
    [Fact]
    public void StepSharesNeverAddUpToMoreThanTheirJobsInAnyPeriod()
    {
        bool ran = false;
        void Step0RunsWhileListed()
        {
            if (ran) return;
            ran = true;
            _rig.Cgroups.SetV1Usage(JobDir42 + "/step_0", 300 * Ms); // +100 ms in the step, and so in its job
            _rig.SetJobCpu("42", 700 * Ms);
        }
        using var node = FromZero(out var cfg, ["42"], l => new RunsWhileListing(l, Step0RunsWhileListed));

        void Period(int s, ulong jobMs, ulong batchMs, ulong step0Ms, ulong busyTicks)
        {
            _rig.SetJobCpu("42", jobMs * Ms);
            _rig.Cgroups.SetV1Usage(JobDir42 + "/step_batch", batchMs * Ms);
            _rig.Cgroups.SetV1Usage(JobDir42 + "/step_0", step0Ms * Ms);
            _rig.Proc.SetStat(busyTicks, 0);
            _rig.SetCounters((ulong)s * 900_000, 0, 0);
            node.Snapshot(s * 1000 * Ms, s * 1000 * Ms);
        }
        // Period 1: 600 ms in the job (batch 400, step 0 200) when the period ends, then 100 ms more in step 0; node busy 1.1 s.
        Period(1, 600, 400, 200, 110);
        // Period 2: the steps' reads moved 150 ms (batch 60, step 0 90), the job's 100 ms; node busy 1 s.
        Period(2, 800, 460, 390, 210);
        node.Flush();

        string dir = JobDir(cfg, "42");
        var job = Package(dir, "job:42");
        var batch = Package(dir, "step:42.batch");
        var step0 = Package(dir, "step:42.0");
        // Period 1, steps read before their job: job 700 ms, batch 400, step 0 300 of a 1.1 s busy node.
        // Period 2, steps above the job: scaled to its 100 ms (batch 60 × 100 / 150 = 40 ms, step 0 60 ms) of 1 s.
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 572_727, 0), (2000, 90_000, 0) }, job);
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 327_272, 0), (2000, 36_000, 0) }, batch);
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 245_454, 0), (2000, 54_000, 0) }, step0);
        for (int p = 0; p < 2; p++)
            Assert.True(batch[p].Value + step0[p].Value <= job[p].Value, $"period {p + 1}: steps {batch[p].Value} + {step0[p].Value} > job {job[p].Value}");
        node.Close(2000 * Ms, 2000 * Ms);
    }

    /// <summary>
    /// A job's cgroup removed and made again while the job stays registered (a requeue): the new cgroup's whole usage is
    /// the job's, counted from the period it is found. It used to keep the old cgroup's last usage as the new one's
    /// baseline, counting 0 until the new usage passed it (the kernel's removed cgroup reads fail:
    /// <paramref name="oldReadFails"/>; a plain file, or a kernel whose removed file still reads its last value, is caught
    /// by its directory's inode). What is missing, the old cgroup's CPU time since its last read, is in the period that
    /// lost it (flags=8); the period the new one is found misses nothing, and its rows carried flags=2, whose reason says
    /// "counter read errors": they carry none now. Flags=2 stays where the same cgroup is read again after reads of it
    /// failed (<paramref name="sameCgroup"/>): that period holds the CPU time of the one it could not be read.
    /// </summary>
    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void AJobCgroupFoundAgainCountsItsUsageOnceAndFlagsReadErrorOnlyWhereItsReadsFailed(bool oldReadFails, bool sameCgroup)
    {
        using var node = FromZero(out var cfg, ["42"]);
        void Period(int s, ulong jobMs)
        {
            if (jobMs > 0) _rig.SetJobCpu("42", jobMs * Ms);
            _rig.Proc.SetStat((ulong)s * 100, 0);
            _rig.SetCounters((ulong)s * 900_000, 0, 0);
            node.Snapshot(s * 1000 * Ms, s * 1000 * Ms);
        }
        Period(1, 600);
        // The requeue: the old cgroup goes (its open file: unreadable, or its last value), a new one is made at its path.
        string old = _rig.Cgroups.PathOf(JobDir42);
        if (oldReadFails) File.WriteAllText(Path.Combine(old, "cpuacct.usage"), "");
        if (!sameCgroup)
        {
            Directory.Move(old, old + ".old");
            _rig.SetJobCpu("42", 200 * Ms);
            Directory.Delete(old + ".old", recursive: true);
        }
        Period(2, 0);   // the old cgroup is lost (or unreadable): its CPU time since its last read is not known (flagged)
        Period(3, sameCgroup ? 1100UL : 500); // the new one is found: its whole 500 ms (the same one: 500 ms since its last read)
        Period(4, sameCgroup ? 1500UL : 900); // and goes on
        node.Flush();

        string dir = JobDir(cfg, "42");
        var found = sameCgroup ? SpoolFlags.ReadError : SpoolFlags.None;
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 540_000, 0), (2000, 0, SpoolFlags.CgroupGone), (3000, 450_000, found), (4000, 360_000, 0) },
            Package(dir, "job:42"));
        // Every interval still conserves: the job alone on the node gets the node and unattributed series.
        var node42 = Package(dir, "node");
        var unattributed = Package(dir, "unattributed");
        for (int p = 0; p < 4; p++) Assert.Equal(node42[p].Value, Package(dir, "job:42")[p].Value + unattributed[p].Value);
        node.Close(4000 * Ms, 4000 * Ms);
    }

    /// <summary>
    /// A job's cgroup already removed when its epilog's end reads it (Slurm removes it when the job's last step ends, before
    /// the epilog, unless PrologFlags=Contain keeps the extern step): its CPU time since the last snapshot is not known, so
    /// its share of that last period is 0, and nothing said so. That share row now carries flags=8 (the job's cgroup was gone:
    /// its CPU time since the previous read is not in it); the job's row is as it was (complete, no read error: no counter
    /// failed). Here the jobs' locator names no cgroup above the job's (as an exec job's, whose parent is alumet's own), so
    /// nothing can give that CPU time back (<see cref="AJobCgroupGoneBeforeItsEndGetsItsLastPeriodFromTheSchedulersCgroupAboveIt"/>).
    /// Its steps' parts miss the same time: they had no row in that period and their lines no bound; each now has a row of
    /// 0 with flags=8 there, and its line says LowerBound yes.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AJobCgroupGoneBeforeItsEndFlagsTheShareItsLastPeriodMisses(bool removedReadFails)
    {
        using var node = FromZero(out var cfg, ["42", "43"]);
        _rig.Cgroups.SetV1Usage(JobDir42 + "/step_batch", 200 * Ms);
        _rig.Cgroups.SetV1Usage(JobDir42 + "/step_0", 100 * Ms);
        _rig.SetJobCpu("42", 300 * Ms);
        _rig.SetJobCpu("43", 200 * Ms);
        _rig.Proc.SetStat(60, 0);
        _rig.SetCounters(600_000, 0, 0);
        node.Snapshot(1000 * Ms, 1000 * Ms);
        // Job 42's last step ends: its cgroup goes with the CPU time it used since 1 s (its open file: unreadable, or its last value).
        string old = _rig.Cgroups.PathOf(JobDir42);
        if (removedReadFails) File.WriteAllText(Path.Combine(old, "cpuacct.usage"), "");
        Directory.Delete(old, recursive: true);
        _rig.SetJobCpu("43", 300 * Ms);
        _rig.Proc.SetStat(90, 0);
        _rig.SetCounters(900_000, 0, 0);
        var end = node.End(NodeRig.Job("42").Key, true, "", 1500 * Ms, 1500 * Ms)!; // its epilog
        node.Flush();

        string nodeDir = NodeDir(node);
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 300_000, 0), (1500, 0, SpoolFlags.CgroupGone) }, Package(nodeDir, "job:42"));
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 200_000, 0), (1500, 100_000, 0) }, Package(nodeDir, "job:43"));
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 100_000, 0), (1500, 200_000, 0) }, Package(nodeDir, "unattributed"));
        // Complete (nothing went unmeasured), but its energy is a lower bound: its last period's share misses the CPU time it
        // used since 1 s. Its row and what its user reads say so (until 2026-12-02 the row said nothing, the report no bound).
        const string Lost = "the job's cgroup was removed before its end: 1 period(s) of its share miss its CPU time since the read before (that energy is in unattributed): energy is a lower bound";
        Assert.Equal((JobStatus.Complete, Lost, 0L, 1L), (end.Status, end.Record!.Reason, end.Record.ReadErrors, end.Record.CgroupGonePeriods));
        Assert.Contains("LOWER BOUND: job 42 on node1: the job's cgroup was removed before its end, and 1 period(s) of its share miss its CPU " +
                        "time since the read before (that energy is in unattributed); energies are lower bounds.", Report(cfg, "-j", "42").Out);
        // Its steps (batch 200 ms, step 0 100 ms of the node's 600 ms busy in period 1) miss their CPU time since 1 s too.
        AssertStepsLoseTheirLastPeriod(cfg, end, ("42.batch", 200_000), ("42.0", 100_000));
        Assert.Equal("42|yes\n42.batch|yes\n42.0|yes\n", Report(cfg, "-j", "42", "-o", "JobID,LowerBound", "-n", "-P").Out);
        using (var json = System.Text.Json.JsonDocument.Parse(Report(cfg, "-j", "42", "--json").Out))
        {
            var m = json.RootElement.GetProperty("jobs")[0].GetProperty("measurement");
            Assert.Equal((true, 1L, Lost), (m.GetProperty("lower_bound").GetBoolean(), m.GetProperty("cgroup_gone_periods").GetInt64(), m.GetProperty("reason").GetString()));
        }
        AssertLastFlags(end, 8); // in its Parquet file too
        node.Close(1500 * Ms, 1500 * Ms);
    }

    /// <summary>
    /// Job 42's steps, each with its package part of period 1 (µJ), then 0 with flags=8 in the period that lost the job's
    /// cgroup, in its Parquet file; and what <c>alumet-report</c> says of each: LowerBound yes, a LOWER BOUND note, and in
    /// JSON <c>lower_bound</c> true with <c>cgroup_gone_periods</c> 1.
    /// </summary>
    private static void AssertStepsLoseTheirLastPeriod(AlumetConfig cfg, JobFinalizer.Outcome end, params (string Step, long First)[] steps)
    {
        var series = ReadOrderTests.Series(end.ParquetPath);
        foreach (var (step, first) in steps)
            Assert.Equal(new (long, int)[] { (first, 0), (0, 8) }, series[("step:" + step, "cpu_package:0")].Select(r => (r.Raw, r.Flags)));
        string text = Report(cfg, "-j", "42").Out;
        using var json = System.Text.Json.JsonDocument.Parse(Report(cfg, "-j", "42", "--json").Out);
        var lines = json.RootElement.GetProperty("jobs")[0].GetProperty("steps").EnumerateArray()
            .ToDictionary(l => l.GetProperty("step").GetProperty("id").GetString()!, l => l.GetProperty("measurement"));
        foreach (var (step, _) in steps)
        {
            Assert.Contains($"LOWER BOUND: step {step} on node1: its cgroup or its job's was removed before its end, and 1 period(s) of the step's part " +
                            "miss its CPU time since the read before; its energies are lower bounds.", text);
            Assert.Equal((true, 1L), (lines[step].GetProperty("lower_bound").GetBoolean(), lines[step].GetProperty("cgroup_gone_periods").GetInt64()));
        }
    }

    /// <summary><c>alumet-report</c> as root over the accounting database the sampler's epilog wrote.</summary>
    private static (int Code, string Out, string Err) Report(AlumetConfig cfg, params string[] args)
    {
        var (o, e) = (new StringWriter { NewLine = "\n" }, new StringWriter { NewLine = "\n" });
        int code = Alumet.Hpc.Report.ReportCommand.Run(args, new Alumet.Hpc.Report.ReportEnvironment(0, true, cfg.Paths.Database, o, e));
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>CPU time charged so far per cgroup (relative dir), as the kernel keeps it: a removed child's stays in its parents.</summary>
    private readonly Dictionary<string, ulong> _charged = new(StringComparer.Ordinal);

    /// <summary>
    /// Job cgroup <paramref name="rel"/> (made when missing, with its parents) runs <paramref name="ms"/> ms: the kernel
    /// charges it and every cgroup above it up to the hierarchy's root (v1 cpuacct), which holds no process.
    /// </summary>
    private void Run(string rel, ulong ms)
    {
        for (string? d = rel; d is not null && d.Contains('/'); d = Path.GetDirectoryName(d))
        {
            _charged[d] = _charged.GetValueOrDefault(d) + ms * Ms;
            _rig.Cgroups.SetV1Usage(d, _charged[d]);
            string dir = _rig.Cgroups.PathOf(d);
            if (!File.Exists(Path.Combine(dir, "cgroup.procs"))) File.WriteAllText(Path.Combine(dir, "cgroup.procs"), "");
        }
    }

    /// <summary>
    /// Two periods of 1 s after the snapshot at <paramref name="monoMs"/> ms (wall <paramref name="wallMs"/>), where /proc/stat's
    /// busy ticks and the package counter were <paramref name="busyTicks"/> and <paramref name="packageUj"/>: jobs 42 and 43
    /// (<see cref="JobDir42"/>, <see cref="JobDir43"/>) each run 100 ms of the node's 1 s busy, 0.9 J; the second ends at
    /// job 42's epilog. The node's day spool.
    /// </summary>
    private string FoundThenExact(NodeSampler node, JobRegistration job42, ulong busyTicks, ulong packageUj, long monoMs, long wallMs)
    {
        Runs(busyTicks + 100, packageUj + 900_000, (JobDir42, 100), (JobDir43, 100));
        node.Snapshot((monoMs + 1000) * Ms, (wallMs + 1000) * Ms);
        Runs(busyTicks + 200, packageUj + 1_800_000, (JobDir42, 100), (JobDir43, 100));
        node.End(job42.Key, true, "", (monoMs + 2000) * Ms, (wallMs + 2000) * Ms);
        node.Flush();
        return NodeDir(node);
    }

    /// <summary>
    /// Job cgroups <paramref name="runs"/> run their ms (<see cref="Run"/>), and the node's /proc/stat busy ticks and package
    /// counter (µJ) reach <paramref name="busyTicks"/> and <paramref name="packageUj"/>: what the next snapshot reads.
    /// </summary>
    private void Runs(ulong busyTicks, ulong packageUj, params (string Cgroup, ulong Ms)[] runs)
    {
        foreach (var (cgroup, ms) in runs) Run(cgroup, ms);
        _rig.Proc.SetStat(busyTicks, 0);
        _rig.SetCounters(packageUj, 0, 0);
    }

    /// <summary>Removes job cgroup <paramref name="rel"/> (its open usage file: unreadable, as on cgroupfs: ENODEV).</summary>
    private void Rmdir(string rel, bool readFails = true)
    {
        string dir = _rig.Cgroups.PathOf(rel);
        if (readFails) File.WriteAllText(Path.Combine(dir, "cpuacct.usage"), "");
        Directory.Delete(dir, recursive: true);
    }

    private static JobRegistration Job(string scheduler, string id, string user, int uid) =>
        new(new JobIdentity(scheduler, "test", id, user, uid, "node1"), null, null, false, false, 1);

    /// <summary>
    /// A node sampler with the scheduler's own cgroup locators, from zero counters, /proc/stat and job CPU times, with
    /// <paramref name="jobs"/> (their cgroup, their registration) registered.
    /// </summary>
    private NodeSampler WithSchedulerLayout(out AlumetConfig cfg, params (string Cgroup, JobRegistration Reg)[] jobs)
    {
        cfg = _rig.Config();
        _rig.SetCounters(0, 0, 0);
        _rig.Proc.SetStat(0, 0);
        foreach (var (cgroup, _) in jobs) Run(cgroup, 0);
        var node = _rig.NewNode(cfg, schedulerLocators: true);
        foreach (var (_, reg) in jobs) node.Register(reg, false, 0);
        return node;
    }

    /// <summary>Period 1, to 1 s: each job cgroup of <paramref name="runs"/> runs its ms; the node is 1 s busy and counts 0.9 J.</summary>
    private void FirstSecond(NodeSampler node, params (string Cgroup, ulong Ms)[] runs)
    {
        foreach (var (cgroup, ms) in runs) Run(cgroup, ms);
        _rig.Proc.SetStat(100, 0);
        _rig.SetCounters(900_000, 0, 0);
        node.Snapshot(1000 * Ms, 1000 * Ms);
    }

    /// <summary>Period 2 ends at 1.5 s, the node 0.5 s busy, 0.5 J, where <paramref name="job"/>'s epilog ends it.</summary>
    private JobFinalizer.Outcome EpilogAt1500(NodeSampler node, JobRegistration job)
    {
        _rig.Proc.SetStat(150, 0);
        _rig.SetCounters(1_400_000, 0, 0);
        var end = node.End(job.Key, true, "", 1500 * Ms, 1500 * Ms)!;
        node.Flush();
        return end;
    }

    /// <summary>
    /// The package rows of each consumer in the node's spool, (1 s, its value then, 1.5 s, its value and flags then), and
    /// every interval of every domain conserving.
    /// </summary>
    private static void AssertPeriods(NodeSampler node, params (string Consumer, long At1000, long At1500, SpoolFlags Flags)[] expected)
    {
        string nodeDir = NodeDir(node);
        foreach (var (consumer, first, second, flags) in expected)
            Assert.Equal(new (long, long, SpoolFlags)[] { (1000, first, 0), (1500, second, flags) }, Package(nodeDir, consumer));
        Conservation.AssertEveryInterval(nodeDir, 2 * 3); // the two periods, per counter
    }

    /// <summary>Slurm with job 44 keeping alice's <c>uid_1000</c>, Slurm without it, and OAR: the cgroups of jobs 42, 43 and 44.</summary>
    public static TheoryData<string, string, string?> Layouts => new()
    {
        { "cpuacct/slurm/uid_1000/job_42", "cpuacct/slurm/uid_1001/job_43", "cpuacct/slurm/uid_1000/job_44" },
        { "cpuacct/slurm/uid_1000/job_42", "cpuacct/slurm/uid_1001/job_43", null },
        { "cpuacct/oar/alice_42", "cpuacct/oar/bob_43", null },
    };

    /// <summary>
    /// Jobs 42 (alice), 43 (bob) and, when <paramref name="j44"/> is given, 44 (alice) at those cgroups, of the scheduler
    /// whose layout they are; and what each runs in period 1 (300, 200, 100 ms).
    /// </summary>
    private static (string Scheduler, (string, JobRegistration)[] Jobs, (string, ulong)[] First) Jobs424344(string j42, string j43, string? j44)
    {
        string scheduler = j42.Contains("/oar/", StringComparison.Ordinal) ? "oar" : "slurm";
        var jobs = new List<(string, JobRegistration)> { (j42, Job(scheduler, "42", "alice", 1000)), (j43, Job(scheduler, "43", "bob", 1001)) };
        var first = new List<(string, ulong)> { (j42, 300), (j43, 200) };
        if (j44 is not null)
        {
            jobs.Add((j44, Job(scheduler, "44", "alice", 1000)));
            first.Add((j44, 100));
        }
        return (scheduler, [.. jobs], [.. first]);
    }

    /// <summary>Job 42's last row in its Parquet file carries <paramref name="flags"/> in every RAPL domain.</summary>
    private static void AssertLastFlags(JobFinalizer.Outcome end, int flags)
    {
        var last = ReadOrderTests.Series(end.ParquetPath)
            .Where(kv => kv.Key.Consumer == "job:42").ToDictionary(kv => kv.Key.Domain, kv => kv.Value[^1].Flags);
        Assert.Equal(new Dictionary<string, int> { ["cpu_package:0"] = flags, ["cpu_cores:0"] = flags, ["dram:0"] = flags }, last);
    }

    /// <summary>
    /// Slurm (22.05, cgroup v1, proctrack/cgroup) removes a job's cgroup when its last step ends, before its epilog's end
    /// reads it, and the user's directory with their last job on the node: the job's CPU time since the last snapshot is
    /// still counted in the cgroups above (cpuacct charges every ancestor). The job's last period was 0 and its energy
    /// unattributed (flags=8). It is now the CPU time of its nearest parent still there (<c>uid_1000</c> while job 44
    /// keeps it, else <c>slurm</c>; OAR 2's <c>oar</c>) less the other registered jobs' below it, and the rows say so
    /// (flags=16); every interval still conserves. (OAR 2.5 removes a job's cgroup after its epilogue: README
    /// "Attribution"; its layout allows the same.) On Slurm job 42 runs in its step 0, whose part has no parent to take
    /// that time from: it is 0 with flags=8 in that period, its line a lower bound where the job's is not.
    /// </summary>
    [Theory]
    [MemberData(nameof(Layouts))]
    public void AJobCgroupGoneBeforeItsEndGetsItsLastPeriodFromTheSchedulersCgroupAboveIt(string j42, string j43, string? j44)
    {
        var (scheduler, jobs, first) = Jobs424344(j42, j43, j44);
        string run42 = scheduler == "slurm" ? j42 + "/step_0" : j42; // the kernel charges a step's time to its job too
        using var node = WithSchedulerLayout(out var cfg, jobs);
        FirstSecond(node, first.Select(x => x.Item1 == j42 ? (run42, x.Item2) : x).ToArray()); // 42 runs 300 ms, 43 200, 44 100
        // Period 2: 42 runs 150 ms and its last step ends: Slurm removes its cgroup (and alice's directory with her last
        // job); 43 runs 100 ms, 44 50; the node 0.5 s busy, 0.5 J. Its epilog's end at 1.5 s.
        Run(run42, 150);
        Rmdir(j42);
        if (j44 is null && scheduler == "slurm") Rmdir(Path.GetDirectoryName(j42)!, readFails: false); // a removed file still read: its directory is gone
        Run(j43, 100);
        if (j44 is not null) Run(j44, 50);
        var end = EpilogAt1500(node, Job(scheduler, "42", "alice", 1000));

        AssertPeriods(node, ("job:42", 270_000, 150_000, SpoolFlags.FromParentCgroup), ("job:43", 180_000, 100_000, 0),
            j44 is null ? ("unattributed", 450_000, 250_000, SpoolFlags.None) : ("unattributed", 360_000, 200_000, SpoolFlags.None));
        Assert.Equal((JobStatus.Complete, "", 0L), (end.Status, end.Record!.Reason, end.Record.ReadErrors));
        AssertLastFlags(end, 16); // in its Parquet file too
        if (scheduler == "slurm")
        {
            // Step 0: 300 ms of the node's 1 s busy in period 1, then nothing for its 150 ms (until 2026-12-02: no row, no bound).
            AssertStepsLoseTheirLastPeriod(cfg, end, ("42.0", 270_000));
            Assert.Equal("42|no\n42.0|yes\n", Report(cfg, "-j", "42", "-o", "JobID,LowerBound", "-n", "-P").Out);
        }
        node.Close(1500 * Ms, 1500 * Ms);
    }

    /// <summary>
    /// The same, in the first period after a restart (crash, kill -9): the restarted sampler takes its jobs back
    /// (<see cref="NodeSampler.Recover"/>, the daemon's recovery) and read their cgroups where its first period starts,
    /// but not the scheduler's cgroups above them, so none had a delta for that period and a job cgroup removed in it kept
    /// its share 0 with flags=8, its energy unattributed. The parents are now read at that instant too: the lost job gets
    /// its CPU time from them (flags=16), and every interval conserves. On Slurm job 42 runs in its step 0, read at that
    /// instant too: its part of that period misses its time (0, flags=8).
    /// </summary>
    [Theory]
    [MemberData(nameof(Layouts))]
    public void AJobCgroupGoneInTheFirstPeriodAfterASamplerRestartGetsItsCpuTimeFromTheSchedulersCgroupAboveIt(string j42, string j43, string? j44)
    {
        var (scheduler, jobs, first) = Jobs424344(j42, j43, j44);
        string run42 = scheduler == "slurm" ? j42 + "/step_0" : j42;
        var killed = WithSchedulerLayout(out var cfg, jobs);
        FirstSecond(killed, first.Select(x => x.Item1 == j42 ? (run42, x.Item2) : x).ToArray()); // 42 runs 300 ms, 43 200, 44 100
        killed.Flush(); // then killed: no Close

        // While no sampler runs, the jobs go on (42 1 s, 43 0.5 s, 44 0.2 s; the node 9 s busy, 4.1 J); a new sampler takes
        // them back as the daemon does.
        Run(run42, 1000);
        Run(j43, 500);
        if (j44 is not null) Run(j44, 200);
        _rig.Proc.SetStat(1000, 0);
        _rig.SetCounters(5_000_000, 0, 0);
        using var node = _rig.NewNode(cfg, schedulerLocators: true);
        node.Recover(5 * Ms);
        Assert.Equal(jobs.Length, node.JobCount);
        // Its first period: 42 runs 150 ms and its last step ends (Slurm removes its cgroup, and alice's directory with her
        // last job); 43 runs 100 ms, 44 50; the node 0.5 s busy, 0.5 J. Its epilog's end at 1.5 s (wall 2.5 s).
        Run(run42, 150);
        Rmdir(j42);
        if (j44 is null && scheduler == "slurm") Rmdir(Path.GetDirectoryName(j42)!, readFails: false);
        Run(j43, 100);
        if (j44 is not null) Run(j44, 50);
        _rig.Proc.SetStat(1050, 0);
        _rig.SetCounters(5_500_000, 0, 0);
        var end = node.End(Job(scheduler, "42", "alice", 1000).Key, true, "", 1500 * Ms, 2500 * Ms)!;
        node.Flush();

        string nodeDir = NodeDir(node);
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 270_000, 0), (2500, 150_000, SpoolFlags.FromParentCgroup) }, Package(nodeDir, "job:42"));
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 180_000, 0), (2500, 100_000, 0) }, Package(nodeDir, "job:43"));
        Assert.Equal(j44 is null ? new (long, long, SpoolFlags)[] { (1000, 450_000, 0), (2500, 250_000, 0) } : [(1000, 360_000, 0), (2500, 200_000, 0)],
            Package(nodeDir, "unattributed"));
        Conservation.AssertEveryInterval(nodeDir, 2 * 3); // the two periods, per counter
        // Partial for the restart only (its energy between its last flush and the restart), with no read error.
        Assert.Equal((JobStatus.Partial, 0L), (end.Status, end.Record!.ReadErrors));
        Assert.StartsWith("the node sampler restarted during the job", end.Record.Reason);
        AssertLastFlags(end, 16); // in its Parquet file too
        if (scheduler == "slurm") AssertStepsLoseTheirLastPeriod(cfg, end, ("42.0", 270_000)); // the step: 300 ms of 1 s, then 0
        node.Close(1500 * Ms, 2500 * Ms);
    }

    /// <summary>
    /// Two job cgroups below one parent removed in the same period: the parent's delta holds both, and how it splits
    /// between them is not known. Each job's share of that period stays 0 with flags=8, its energy unattributed.
    /// </summary>
    [Fact]
    public void TwoJobCgroupsGoneBelowOneParentInOnePeriodKeepFlags8AndTheirEnergyUnattributed()
    {
        const string J42 = "cpuacct/slurm/uid_1000/job_42", J43 = "cpuacct/slurm/uid_1001/job_43", J44 = "cpuacct/slurm/uid_1000/job_44";
        using var node = WithSchedulerLayout(out var cfg,
            (J42, Job("slurm", "42", "alice", 1000)), (J43, Job("slurm", "43", "bob", 1001)), (J44, Job("slurm", "44", "alice", 1000)));
        FirstSecond(node, (J42, 300), (J43, 200), (J44, 100));
        Run(J42, 150);
        Rmdir(J42);
        Run(J44, 50);
        Rmdir(J44);
        Run(J43, 100);
        EpilogAt1500(node, Job("slurm", "42", "alice", 1000));

        AssertPeriods(node, ("job:42", 270_000, 0, SpoolFlags.CgroupGone), ("job:44", 90_000, 0, SpoolFlags.CgroupGone),
            ("job:43", 180_000, 100_000, 0), ("unattributed", 360_000, 400_000, 0));
        node.Close(1500 * Ms, 1500 * Ms);
    }

    /// <summary>
    /// A numbered step that ends before its job: Slurm removes its cgroup (job 42's stays, its batch step runs on), with the
    /// CPU time it used since the last snapshot. That time is not known: the job's delta less its other steps' holds it, but
    /// also the time of any step made and removed within the period (<paramref name="how"/> = brief: step 1, a short srun
    /// after step 0, never listed), which nothing in the job's directory shows afterwards; so its part of that period is 0
    /// with flags=8 and its line a lower bound, alone (<paramref name="how"/> = alone), beside a brief step, or with the
    /// batch step gone too (two). Until 2026-12-03 (session 18), alone and beside a brief step, it took the job's delta
    /// less its other steps' with flags=16 (complete): the brief step's 80 ms in step 0's 150.
    /// </summary>
    [Theory]
    [InlineData("alone")]
    [InlineData("brief")]
    [InlineData("two")]
    public void AStepCgroupGoneBeforeItsJobsEndHasItsLastPeriodAsALowerBound(string how)
    {
        const string J42 = "cpuacct/slurm/uid_1000/job_42", J43 = "cpuacct/slurm/uid_1001/job_43";
        using var node = WithSchedulerLayout(out var cfg, (J42, Job("slurm", "42", "alice", 1000)), (J43, Job("slurm", "43", "bob", 1001)));
        FirstSecond(node, (J42 + "/step_batch", 100), (J42 + "/step_0", 200), (J43, 200)); // 42: 300 ms of the node's 1 s busy
        // Period 2: step 0 runs 150 ms and ends (Slurm removes its cgroup); the batch step runs 50 ms; 43 100 ms.
        Run(J42 + "/step_0", 150);
        Rmdir(J42 + "/step_0");
        if (how == "brief")
        {
            Run(J42 + "/step_1", 80); // made, run and removed between two snapshots
            Rmdir(J42 + "/step_1");
        }
        Run(J42 + "/step_batch", 50);
        if (how == "two") Rmdir(J42 + "/step_batch");
        Run(J43, 100);
        var end = EpilogAt1500(node, Job("slurm", "42", "alice", 1000));

        // The job's share is complete whatever its steps did: its cgroup holds their time, a removed step's too.
        long job42 = how == "brief" ? 280_000 : 200_000;
        AssertPeriods(node, ("job:42", 270_000, job42, 0), ("job:43", 180_000, 100_000, 0), ("unattributed", 450_000, 400_000 - job42, 0));
        var series = ReadOrderTests.Series(end.ParquetPath);
        (long, int)[] Step(string step) => series[("step:42." + step, "cpu_package:0")].Select(r => (r.Raw, r.Flags)).ToArray();
        Assert.Equal(new (long, int)[] { (180_000, 0), (0, 8) }, Step("0"));
        Assert.Equal(new (long, int)[] { (90_000, 0), how == "two" ? (0, 8) : (50_000, 0) }, Step("batch"));
        Assert.False(series.ContainsKey(("step:42.1", "cpu_package:0")));
        Assert.Equal(how == "two" ? "42|no\n42.batch|yes\n42.0|yes\n" : "42|no\n42.batch|no\n42.0|yes\n",
            Report(cfg, "-j", "42", "-o", "JobID,LowerBound", "-n", "-P").Out);
        // What its user reads says so: a LOWER BOUND note, in JSON lower_bound with cgroup_gone_periods.
        string text = Report(cfg, "-j", "42").Out;
        using var json = System.Text.Json.JsonDocument.Parse(Report(cfg, "-j", "42", "--json").Out);
        var lines = json.RootElement.GetProperty("jobs")[0].GetProperty("steps").EnumerateArray()
            .ToDictionary(l => l.GetProperty("step").GetProperty("id").GetString()!, l => l.GetProperty("measurement"));
        foreach (string step in new[] { "42.0", "42.batch" })
        {
            bool bound = how == "two" || step == "42.0";
            Assert.Equal(bound, text.Contains($"LOWER BOUND: step {step} on node1: its cgroup or its job's was removed before its end, and 1 period(s) " +
                                              "of the step's part miss its CPU time since the read before; its energies are lower bounds.", StringComparison.Ordinal));
            Assert.Equal((bound, bound ? 1L : 0L), (lines[step].GetProperty("lower_bound").GetBoolean(),
                lines[step].TryGetProperty("cgroup_gone_periods", out var g) ? g.GetInt64() : 0L));
        }
        node.Close(1500 * Ms, 1500 * Ms);
    }

    /// <summary>
    /// The snapshot at <paramref name="ms"/> ms while cgroup <paramref name="rel"/> cannot be listed: mode 0311, and the
    /// snapshot's thread without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (<see cref="WithoutDacOverride"/>): opendir fails
    /// with EACCES while the files in it still open.
    /// </summary>
    private void SnapshotWhereItCannotBeListed(NodeSampler node, string rel, long ms) =>
        SnapshotWithMode(node, rel, UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute, ms, dir =>
        {
            Assert.Throws<UnauthorizedAccessException>(() => Directory.GetDirectories(dir)); // what the snapshot meets
            Assert.Equal("", File.ReadAllText(Path.Combine(dir, "cgroup.procs")));          // while its files read
        });

    /// <summary>
    /// The snapshot at <paramref name="ms"/> ms while cgroup directory <paramref name="rel"/> has <paramref name="mode"/>, on a
    /// thread without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (<see cref="WithoutDacOverride"/>), after
    /// <paramref name="check"/> (on that thread) has shown what the snapshot meets there; the mode is restored after.
    /// </summary>
    private void SnapshotWithMode(NodeSampler node, string rel, UnixFileMode mode, long ms, Action<string> check) =>
        WithMode(rel, mode, check, () => node.Snapshot(ms * Ms, ms * Ms));

    /// <summary>
    /// <paramref name="action"/> while cgroup directory <paramref name="rel"/> has <paramref name="mode"/>, on a thread
    /// without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (<see cref="WithoutDacOverride"/>), after <paramref name="check"/>
    /// (on that thread) has shown what it meets there; the mode is restored after.
    /// </summary>
    private void WithMode(string rel, UnixFileMode mode, Action<string> check, Action action)
    {
        string dir = _rig.Cgroups.PathOf(rel);
        var was = File.GetUnixFileMode(dir);
        File.SetUnixFileMode(dir, mode);
        try
        {
            WithoutDacOverride.Run(() =>
            {
                check(dir);
                action();
            });
        }
        finally { File.SetUnixFileMode(dir, was); }
    }

    /// <summary>
    /// The snapshot at <paramref name="ms"/> ms while nothing below cgroup directory <paramref name="rel"/> can be stat'ed
    /// (mode 0600: no search permission, to a thread without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH): stat(2) of
    /// <paramref name="below"/> fails with EACCES, not ENOENT, while the files the sampler holds open there still read.
    /// </summary>
    private void SnapshotWhereNothingBelowCanBeStated(NodeSampler node, string rel, string below, long ms) =>
        WhereNothingBelowCanBeStated(rel, below, () => node.Snapshot(ms * Ms, ms * Ms));

    /// <summary><paramref name="action"/> where nothing below <paramref name="rel"/> can be stat'ed, as <see cref="SnapshotWhereNothingBelowCanBeStated"/>.</summary>
    private void WhereNothingBelowCanBeStated(string rel, string below, Action action) =>
        WithMode(rel, UnixFileMode.UserRead | UnixFileMode.UserWrite, _ =>
        {
            string path = _rig.Cgroups.PathOf(below);
            Assert.False(Directory.Exists(path));
            Assert.Throws<UnauthorizedAccessException>(() => File.GetAttributes(path)); // EACCES: there, but not known to be
        }, action);

    /// <summary>
    /// A listing of a job's directory that fails with an error other than ENOENT or ENOTDIR (EACCES: the snapshot runs without
    /// CAP_DAC_READ_SEARCH over a 0311 directory, <see cref="WithoutDacOverride"/>) is not "no step". Until 2026-12-03 it
    /// was (<see cref="CgroupHierarchy.Subdirectories"/> gave none): every step of job 42 was taken for gone (0, flags=8,
    /// its line a lower bound), then found again at the next listing as new, its whole usage since it started counted in
    /// one period and scaled to the job's, with no flag. Now the steps known go on, each read through its open cgroup;
    /// step 1, made while the listing failed, has no part in that period, and its first part holds its usage since it
    /// started. Both periods' step parts carry flags=2 (a read failed in the interval); the job's share never changes.
    /// </summary>
    [Fact]
    public void AStepListingThatFailsKeepsTheJobsStepsAndFlagsTheirPartsNotExact()
    {
        const string J42 = "cpuacct/slurm/uid_1000/job_42", J43 = "cpuacct/slurm/uid_1001/job_43";
        var job42 = Job("slurm", "42", "alice", 1000);
        using var node = WithSchedulerLayout(out var cfg, (J42, job42), (J43, Job("slurm", "43", "bob", 1001)));
        FirstSecond(node, (J42 + "/step_batch", 100), (J42 + "/step_0", 200), (J43, 200)); // 42: 300 ms of the node's 1 s busy
        // Period 2, to 2 s: the batch step runs 50 ms, step 0 100, step 1 is made and runs 40; 43 runs 100; the node 1 s
        // busy, 0.9 J. Job 42's directory cannot be listed at its snapshot.
        foreach (var (cgroup, ms) in new (string, ulong)[] { (J42 + "/step_batch", 50), (J42 + "/step_0", 100), (J42 + "/step_1", 40), (J43, 100) })
            Run(cgroup, ms);
        _rig.Proc.SetStat(200, 0);
        _rig.SetCounters(1_800_000, 0, 0);
        SnapshotWhereItCannotBeListed(node, J42, 2000);
        // Period 3, to 3 s (job 42's epilog): 42 runs 100 ms in its own cgroup, the batch step 60, step 0 30, step 1 20;
        // 43 runs 100; the node 1 s busy, 0.9 J.
        foreach (var (cgroup, ms) in new (string, ulong)[] { (J42, 100), (J42 + "/step_batch", 60), (J42 + "/step_0", 30), (J42 + "/step_1", 20), (J43, 100) })
            Run(cgroup, ms);
        _rig.Proc.SetStat(300, 0);
        _rig.SetCounters(2_700_000, 0, 0);
        var end = node.End(job42.Key, true, "", 3000 * Ms, 3000 * Ms)!;
        node.Flush();

        // The job's share, whatever its listing did: 190 ms, then 210 of the node's 1 s.
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 270_000, 0), (2000, 171_000, 0), (3000, 189_000, 0) }, Package(NodeDir(node), "job:42"));
        var series = ReadOrderTests.Series(end.ParquetPath);
        (long, int)[] Step(string step) => series[("step:42." + step, "cpu_package:0")].Select(r => (r.Raw, r.Flags)).ToArray();
        // Period 2: the steps known, read through their open cgroups (batch 50 ms, step 0 100); step 1 not seen. Period 3:
        // batch 60, step 0 30, step 1 first seen with its whole 60 ms (40 of them in period 2). Both periods flagged 2.
        Assert.Equal(new (long, int)[] { (90_000, 0), (45_000, 2), (54_000, 2) }, Step("batch"));
        Assert.Equal(new (long, int)[] { (180_000, 0), (90_000, 2), (27_000, 2) }, Step("0"));
        Assert.Equal(new (long, int)[] { (54_000, 2) }, Step("1"));
        // No step was gone: no line is a lower bound.
        Assert.DoesNotContain("LOWER BOUND", Report(cfg, "-j", "42").Out, StringComparison.Ordinal);
        node.Close(3000 * Ms, 3000 * Ms);
    }

    /// <summary>
    /// A parent cgroup that cannot be listed (EACCES, as in
    /// <see cref="AStepListingThatFailsKeepsTheJobsStepsAndFlagsTheirPartsNotExact"/>) is not proven to hold only the
    /// registered jobs' cgroups. Until 2026-12-03 the failed listing counted as "nothing below": job 42, removed below
    /// alice's <c>uid_1000</c> beside job 45, which no prolog registered, took <c>uid_1000</c>'s delta less job 44's, job
    /// 45's 100 ms in it: 250 ms, with flags=16 (exact). Its share of that period is now 0 with flags=8, as where the
    /// listing shows job 45 (<see cref="ALostJobsShareIsNotTakenFromAParentThatHoldsWhatTheSamplerDoesNotKnow"/>).
    /// </summary>
    [Fact]
    public void ALostJobsShareIsNotTakenFromAParentThatCannotBeListed()
    {
        const string J42 = "cpuacct/slurm/uid_1000/job_42", J44 = "cpuacct/slurm/uid_1000/job_44", J45 = "cpuacct/slurm/uid_1000/job_45";
        using var node = WithSchedulerLayout(out var cfg, (J42, Job("slurm", "42", "alice", 1000)), (J44, Job("slurm", "44", "alice", 1000)));
        FirstSecond(node, (J42, 300), (J44, 100));
        Run(J42, 150);
        Rmdir(J42);
        Run(J44, 50);
        Run(J45, 100);
        _rig.Proc.SetStat(150, 0);
        _rig.SetCounters(1_400_000, 0, 0);
        SnapshotWhereItCannotBeListed(node, "cpuacct/slurm/uid_1000", 1500);
        node.Flush();

        AssertPeriods(node, ("job:42", 270_000, 0, SpoolFlags.CgroupGone), ("job:44", 90_000, 50_000, 0));
        node.Close(1500 * Ms, 1500 * Ms);
    }

    /// <summary>
    /// An idle job whose directory cannot be stat'ed (EACCES: alice's <c>uid_1000</c> without search permission to the
    /// snapshot's thread, <see cref="SnapshotWhereNothingBelowCanBeStated"/>) is not gone: its usage did not move, and a
    /// stat that fails with an error other than ENOENT or ENOTDIR does not say whether its directory is there. Until
    /// 2026-12-03 any failed stat was "gone": job 42's cgroup was dropped (0 with flags=8, a lower bound), then found again
    /// in the next period (flags=2). Now it is kept and read on through its open file: its 0 of that period carries flags=2
    /// (not known exact: were it removed on a kernel whose removed file still reads, it would miss its CPU time since), and
    /// the next period is exact.
    /// </summary>
    [Fact]
    public void AnIdleJobWhoseDirectoryCannotBeStatedIsKeptAndItsPeriodFlaggedNotGone()
    {
        const string J42 = "cpuacct/slurm/uid_1000/job_42", J43 = "cpuacct/slurm/uid_1001/job_43";
        var job42 = Job("slurm", "42", "alice", 1000);
        using var node = WithSchedulerLayout(out var cfg, (J42, job42), (J43, Job("slurm", "43", "bob", 1001)));
        FirstSecond(node, (J42, 300), (J43, 200));
        // Period 2, to 2 s: 42 idle, 43 runs 100 ms; the node 1 s busy, 0.9 J. Nothing below uid_1000 can be stat'ed then.
        Run(J43, 100);
        _rig.Proc.SetStat(200, 0);
        _rig.SetCounters(1_800_000, 0, 0);
        SnapshotWhereNothingBelowCanBeStated(node, "cpuacct/slurm/uid_1000", J42, 2000);
        // Period 3, to 3 s (42's epilog): 42 runs 100 ms, 43 100; the node 1 s busy, 0.9 J.
        Run(J42, 100);
        Run(J43, 100);
        _rig.Proc.SetStat(300, 0);
        _rig.SetCounters(2_700_000, 0, 0);
        var end = node.End(job42.Key, true, "", 3000 * Ms, 3000 * Ms)!;
        node.Flush();

        string nodeDir = NodeDir(node);
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 270_000, 0), (2000, 0, SpoolFlags.ReadError), (3000, 90_000, 0) }, Package(nodeDir, "job:42"));
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 180_000, 0), (2000, 90_000, 0), (3000, 90_000, 0) }, Package(nodeDir, "job:43"));
        Conservation.AssertEveryInterval(nodeDir, 3 * 3); // the three periods, per counter
        Assert.Equal(0L, end.Record!.CgroupGonePeriods); // not a lower bound
        Assert.DoesNotContain("LOWER BOUND", Report(cfg, "-j", "42").Out, StringComparison.Ordinal);
        node.Close(3000 * Ms, 3000 * Ms);
    }

    /// <summary>
    /// A job cgroup that is there, running, but whose lookup cannot stat it (EACCES: alice's <c>uid_1000</c> without search
    /// permission to the snapshot's thread, <see cref="SnapshotWhereNothingBelowCanBeStated"/>) is not "not found yet".
    /// Until 2026-12-03 the lookup (<c>SlurmCgroupLocator.Find</c>) took any failed stat for "no cgroup": job 42, registered
    /// by its prolog, had 0 in that period with no flag, and when found the period after, its whole 400 ms since it started
    /// in that period's share, with no flag (360 mJ of 0.9 J, where it ran 100 ms of the node's 1 s). The lookup now says
    /// "not known": that period's 0 carries flags=2, and so does the period it is found in, which holds the CPU time of
    /// the periods it could not be found (as a cgroup read again after failed reads); the next one is exact, and every
    /// interval conserves.
    /// </summary>
    [Fact]
    public void AJobCgroupThatCannotBeStatedWhenLookedUpIsNotKnownRatherThanNotFound()
    {
        const string J42 = JobDir42, J43 = JobDir43;
        var job42 = Job("slurm", "42", "alice", 1000);
        using var node = WithSchedulerLayout(out var cfg, (J42, job42), (J43, Job("slurm", "43", "bob", 1001)));
        // Period 1, to 1 s: 42 runs 300 ms, 43 200; the node 1 s busy, 0.9 J. Nothing below uid_1000 can be stat'ed then.
        Runs(100, 900_000, (J42, 300), (J43, 200));
        SnapshotWhereNothingBelowCanBeStated(node, "cpuacct/slurm/uid_1000", J42, 1000);
        string nodeDir = FoundThenExact(node, job42, 100, 900_000, 1000, 1000); // periods 2 and 3, to 2 s and 3 s
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 0, SpoolFlags.ReadError), (2000, 360_000, SpoolFlags.ReadError), (3000, 90_000, 0) },
            Package(nodeDir, "job:42"));
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 180_000, 0), (2000, 90_000, 0), (3000, 90_000, 0) }, Package(nodeDir, "job:43"));
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 720_000, 0), (2000, 450_000, 0), (3000, 720_000, 0) }, Package(nodeDir, "unattributed"));
        Conservation.AssertEveryInterval(nodeDir, 3 * 3); // the three periods, per counter
        node.Close(3000 * Ms, 3000 * Ms);
    }

    /// <summary>
    /// The same for a job taken back by a restarted sampler (<see cref="NodeSampler.Recover"/>) whose lookup cannot stat its
    /// cgroup at the restart: it has no baseline, so its CPU time until it is found is not known. Until 2026-12-03 that
    /// lookup said "no cgroup": 0 with no flag in the first period, and again 0 with no flag in the period it was found
    /// (a job taken back counts from its first read), the 200 ms it ran in them lost without a word. Both periods' 0 now
    /// carry flags=2; the next one is exact.
    /// </summary>
    [Fact]
    public void ARecoveredJobCgroupThatCannotBeStatedWhenLookedUpIsNotKnownRatherThanNotFound()
    {
        const string J42 = JobDir42, J43 = JobDir43;
        var job42 = Job("slurm", "42", "alice", 1000);
        var killed = WithSchedulerLayout(out var cfg, (J42, job42), (J43, Job("slurm", "43", "bob", 1001)));
        FirstSecond(killed, (J42, 300), (J43, 200));
        killed.Flush(); // then killed: no Close

        // While no sampler runs, the jobs go on (42 1 s, 43 0.5 s; the node 9 s busy, 4.1 J); a new sampler takes them back,
        // where nothing below uid_1000 can be stat'ed.
        Runs(1000, 5_000_000, (J42, 1000), (J43, 500));
        using var node = _rig.NewNode(cfg, schedulerLocators: true);
        WhereNothingBelowCanBeStated("cpuacct/slurm/uid_1000", J42, () => node.Recover(5 * Ms));
        Assert.Equal(2, node.JobCount);
        // Its first period, of 1 s to wall 2 s: each job runs 100 ms of the node's 1 s busy, 0.9 J. Nothing below uid_1000
        // can be stat'ed at its snapshot either. Then two more (wall 3 s, 4 s).
        Runs(1100, 5_900_000, (J42, 100), (J43, 100));
        WhereNothingBelowCanBeStated("cpuacct/slurm/uid_1000", J42, () => node.Snapshot(1005 * Ms, 2000 * Ms));
        string nodeDir = FoundThenExact(node, job42, 1100, 5_900_000, 1005, 2000);
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 270_000, 0), (2000, 0, SpoolFlags.ReadError), (3000, 0, SpoolFlags.ReadError), (4000, 90_000, 0) },
            Package(nodeDir, "job:42"));
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 180_000, 0), (2000, 90_000, 0), (3000, 90_000, 0), (4000, 90_000, 0) }, Package(nodeDir, "job:43"));
        Conservation.AssertEveryInterval(nodeDir, 4 * 3); // the four periods, per counter
        node.Close(3005 * Ms, 4000 * Ms);
    }

    /// <summary>
    /// Job 42's steps, batch (100, 50, 60 ms) and 0 (200, 100, 30 ms), beside job 43, over three 1 s periods, 0.9 J each;
    /// at the snapshot of period 2 job 42's directory has <paramref name="mode"/> to a thread without CAP_DAC_OVERRIDE
    /// and CAP_DAC_READ_SEARCH: listed where the mode lets its owner read, never searched (stat of what is in it: EACCES).
    /// The batch step is idle in period 2 when <paramref name="batchIdle"/> (its 50 ms then run in period 3). Asserts its
    /// job's package rows and its steps' in its Parquet file, (µJ, flags), and that no line of its report is a lower bound.
    /// </summary>
    private void AssertStepsWhileTheJobDirectoryHas(UnixFileMode mode, bool batchIdle, (long, SpoolFlags)[] job, (long, int)[] batch, (long, int)[] step0)
    {
        const string J42 = "cpuacct/slurm/uid_1000/job_42", J43 = "cpuacct/slurm/uid_1001/job_43";
        var job42 = Job("slurm", "42", "alice", 1000);
        using var node = WithSchedulerLayout(out var cfg, (J42, job42), (J43, Job("slurm", "43", "bob", 1001)));
        FirstSecond(node, (J42 + "/step_batch", 100), (J42 + "/step_0", 200), (J43, 200)); // 42: 300 ms of the node's 1 s busy
        if (!batchIdle) Run(J42 + "/step_batch", 50);
        Run(J42 + "/step_0", 100);
        Run(J43, 100);
        _rig.Proc.SetStat(200, 0);
        _rig.SetCounters(1_800_000, 0, 0);
        SnapshotWithMode(node, J42, mode, 2000, dir =>
        {
            if ((mode & UnixFileMode.UserRead) != 0) Assert.Equal(2, Directory.GetDirectories(dir, "step_*").Length); // listed
            else Assert.Throws<UnauthorizedAccessException>(() => Directory.GetDirectories(dir));                     // or not
            Assert.Throws<UnauthorizedAccessException>(() => File.GetAttributes(Path.Combine(dir, "step_batch", "cpuacct.usage"))); // not stat'ed
        });
        Run(J42 + "/step_batch", batchIdle ? 110UL : 60);
        Run(J42 + "/step_0", 30);
        Run(J43, 100);
        _rig.Proc.SetStat(300, 0);
        _rig.SetCounters(2_700_000, 0, 0);
        var end = node.End(job42.Key, true, "", 3000 * Ms, 3000 * Ms)!;
        node.Flush();

        var series = ReadOrderTests.Series(end.ParquetPath);
        (long, int)[] Step(string step) => series[("step:42." + step, "cpu_package:0")].Select(r => (r.Raw, r.Flags)).ToArray();
        Assert.Equal(job, Package(NodeDir(node), "job:42").Select(r => (r.Value, r.Flags)));
        Assert.Equal(batch, Step("batch"));
        Assert.Equal(step0, Step("0"));
        Assert.DoesNotContain("LOWER BOUND", Report(cfg, "-j", "42").Out, StringComparison.Ordinal);
        node.Close(3000 * Ms, 3000 * Ms);
    }

    /// <summary>
    /// A step that is there, whose cgroup file cannot be stat'ed (EACCES: its job's directory of mode 0600, listed, to a
    /// thread without search permission), is not "no such step". Until 2026-12-03 the step listing
    /// (<see cref="Alumet.Hpc.Schedulers.Slurm.SlurmCgroupLocator.EnumerateSteps"/>) left out every step whose
    /// <c>cpuacct.usage</c> it could not stat: both steps of job 42 were taken for gone (0, flags=8, their lines lower
    /// bounds), then found again as new at the next listing, their whole usage since they started in one period scaled to
    /// the job's, with no flag. Now such a listing is not known, as one that fails
    /// (<see cref="AStepListingThatFailsKeepsTheJobsStepsAndFlagsTheirPartsNotExact"/>): the steps known go on, read through
    /// their open cgroups, that period's parts flagged 2; the next period is exact.
    /// </summary>
    [Fact]
    public void AStepWhoseCgroupCannotBeStatedIsNotLeftOutOfTheListing() =>
        AssertStepsWhileTheJobDirectoryHas(UnixFileMode.UserRead | UnixFileMode.UserWrite, batchIdle: false, job: [(270_000, 0), (135_000, 0), (81_000, 0)],
            batch: [(90_000, 0), (45_000, 2), (54_000, 0)], step0: [(180_000, 0), (90_000, 2), (27_000, 0)]);

    /// <summary>
    /// A known step that is idle in a period whose listing fails, and whose directory cannot be stat'ed (its job's directory
    /// of mode 0200 to a thread without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: opendir and stat fail with EACCES), is not
    /// gone. Until 2026-12-03 its usage that did not move and a stat that failed made it gone (0 with flags=8|2, its line a
    /// lower bound), then new at the next listing, its whole usage since it started in one period. Now it is kept: 0 with
    /// flags=2 in that period (the listing failed), and its 110 ms of the next period exact.
    /// </summary>
    [Fact]
    public void AnIdleStepThatCannotBeStatedIsNotTakenForGone() =>
        AssertStepsWhileTheJobDirectoryHas(UnixFileMode.UserWrite, batchIdle: true, job: [(270_000, 0), (90_000, 0), (126_000, 0)],
            batch: [(90_000, 0), (0, 2), (99_000, 0)], step0: [(180_000, 0), (90_000, 2), (27_000, 0)]);

    /// <summary>
    /// The scheduler's cgroups above a job, idle in a period where they cannot be stat'ed (EACCES: the hierarchy's
    /// <c>cpuacct</c> without search permission to the snapshot's thread), are not removed. Until 2026-12-03 each was taken
    /// for removed and read anew the next period, which then had no delta of them: job 42, removed in that next period
    /// below alice's <c>uid_1000</c>, got 0 with flags=8 (its energy unattributed, a lower bound) where <c>uid_1000</c>'s
    /// delta gives its 150 ms exactly (flags=16). Its idle period's rows carry flags=2
    /// (<see cref="AnIdleJobWhoseDirectoryCannotBeStatedIsKeptAndItsPeriodFlaggedNotGone"/>). (A parent that another job
    /// of the period also reads was read again there, so this showed only for a parent read once in the period.)
    /// </summary>
    [Fact]
    public void AnIdleParentThatCannotBeStatedStillGivesALostJobItsCpuTimeTheNextPeriod()
    {
        const string J42 = "cpuacct/slurm/uid_1000/job_42";
        var job42 = Job("slurm", "42", "alice", 1000);
        using var node = WithSchedulerLayout(out var cfg, (J42, job42));
        FirstSecond(node, (J42, 300));
        // Period 2, to 2 s: 42 idle; the node 1 s busy, 0.9 J. Nothing below cpuacct can be stat'ed at its snapshot.
        _rig.Proc.SetStat(200, 0);
        _rig.SetCounters(1_800_000, 0, 0);
        SnapshotWhereNothingBelowCanBeStated(node, "cpuacct", "cpuacct/slurm/uid_1000", 2000);
        // Period 3, to 2.5 s (its epilog): 42 runs 150 ms and Slurm removes its cgroup; the node 0.5 s busy, 0.5 J.
        Run(J42, 150);
        Rmdir(J42);
        _rig.Proc.SetStat(250, 0);
        _rig.SetCounters(2_300_000, 0, 0);
        node.End(job42.Key, true, "", 2500 * Ms, 2500 * Ms);
        node.Flush();

        string nodeDir = NodeDir(node);
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 270_000, 0), (2000, 0, SpoolFlags.ReadError), (2500, 150_000, SpoolFlags.FromParentCgroup) },
            Package(nodeDir, "job:42"));
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 630_000, 0), (2000, 900_000, 0), (2500, 350_000, 0) }, Package(nodeDir, "unattributed"));
        Conservation.AssertEveryInterval(nodeDir, 3 * 3); // the three periods, per counter
        node.Close(2500 * Ms, 2500 * Ms);
    }

    /// <summary>
    /// A scheduler cgroup above the jobs that is removed and made again between two snapshots (both of alice's jobs
    /// requeued: Slurm removes their cgroups and her <c>uid_1000</c>, then makes them again), on a kernel where a removed
    /// cgroup's open file still reads its last value (the rig's plain files), is dropped and opened anew however many jobs
    /// below it read it in one snapshot. It was dropped by the first of them and read again through the same file by the
    /// next (<c>ParentCgroups.ReadOnce</c>), every snapshot: never opened anew, it had no delta again, and job 42, removed
    /// two periods later below the new <c>uid_1000</c> beside job 44, got 0 with flags=8 (<c>slurm</c> above holds
    /// unregistered job 47) where <c>uid_1000</c>'s delta less job 44's gives its 150 ms exactly (flags=16).
    /// </summary>
    [Fact]
    public void AParentMadeAgainIsOpenedAnewHoweverManyJobsBelowItReadIt()
    {
        const string J42 = JobDir42, J44 = "cpuacct/slurm/uid_1000/job_44", J47 = "cpuacct/slurm/uid_1002/job_47", Uid1000 = "cpuacct/slurm/uid_1000";
        var job42 = Job("slurm", "42", "alice", 1000);
        using var node = WithSchedulerLayout(out var cfg, (J42, job42), (J44, Job("slurm", "44", "alice", 1000)));
        FirstSecond(node, (J42, 300), (J44, 100), (J47, 100));
        // Both requeued: their cgroups' open files fail (ENODEV), uid_1000's reads its last value; all made again (new inodes).
        foreach (string job in new[] { J42, J44 }) File.WriteAllText(Path.Combine(_rig.Cgroups.PathOf(job), "cpuacct.usage"), "");
        string old = _rig.Cgroups.PathOf(Uid1000);
        Directory.Move(old, old + ".old");
        foreach (string d in new[] { J42, J44, Uid1000 }) _charged.Remove(d);
        Runs(200, 1_800_000, (J42, 0), (J44, 0));
        Directory.Delete(old + ".old", recursive: true);
        node.Snapshot(2000 * Ms, 2000 * Ms); // both lost below uid_1000 in one period: 0 with flags=8
        Runs(300, 2_700_000, (J42, 100), (J44, 50));
        node.Snapshot(3000 * Ms, 3000 * Ms); // both found again: new cgroups, counted whole
        Runs(400, 3_600_000, (J42, 150), (J44, 50));
        Rmdir(J42);
        node.End(job42.Key, true, "", 4000 * Ms, 4000 * Ms);
        node.Flush();

        string nodeDir = NodeDir(node);
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 270_000, 0), (2000, 0, SpoolFlags.CgroupGone), (3000, 90_000, 0), (4000, 135_000, SpoolFlags.FromParentCgroup) },
            Package(nodeDir, "job:42"));
        Assert.Equal(new (long, long, SpoolFlags)[] { (1000, 90_000, 0), (2000, 0, SpoolFlags.CgroupGone), (3000, 45_000, 0), (4000, 45_000, 0) },
            Package(nodeDir, "job:44"));
        Conservation.AssertEveryInterval(nodeDir, 4 * 3); // the four periods, per counter
        node.Close(4000 * Ms, 4000 * Ms);
    }

    /// <summary>
    /// What the parent's delta cannot tell apart is never given to the lost job: below the parent, a job cgroup the sampler
    /// does not know (its prolog did not register it), a directory of the scheduler's that no registered job is in, or
    /// processes in the parent itself. The lost job's share then stays 0 with flags=8.
    /// </summary>
    [Theory]
    [InlineData("cpuacct/slurm/uid_1000/job_45")]
    [InlineData("cpuacct/slurm/uid_1000/cgroup.procs")]
    public void ALostJobsShareIsNotTakenFromAParentThatHoldsWhatTheSamplerDoesNotKnow(string unknown)
    {
        const string J42 = "cpuacct/slurm/uid_1000/job_42", J44 = "cpuacct/slurm/uid_1000/job_44";
        using var node = WithSchedulerLayout(out var cfg, (J42, Job("slurm", "42", "alice", 1000)), (J44, Job("slurm", "44", "alice", 1000)));
        FirstSecond(node, (J42, 300), (J44, 100));
        Run(J42, 150);
        Rmdir(J42);
        Run(J44, 50);
        if (unknown.EndsWith("cgroup.procs", StringComparison.Ordinal)) File.WriteAllText(_rig.Cgroups.PathOf(unknown), "4242\n");
        else Run(unknown, 100);
        EpilogAt1500(node, Job("slurm", "42", "alice", 1000));

        AssertPeriods(node, ("job:42", 270_000, 0, SpoolFlags.CgroupGone), ("job:44", 90_000, 50_000, 0));
        node.Close(1500 * Ms, 1500 * Ms);
    }

    /// <summary>
    /// /proc/stat's <c>steal</c> is time the hypervisor gave this vCPU to another guest: not work of this node, so not in
    /// the split's denominator. It was counted busy: on a VM the jobs' shares shrank by the stolen fraction.
    /// </summary>
    [Fact]
    public void StolenTimeIsNotBusyTimeOfTheNode()
    {
        using var node = FromZero(out var cfg, ["42", "43"]);
        // 0.6 s run on the node (job 42 0.3 s, job 43 0.2 s, 0.1 s of the system), 0.4 s stolen, 1 s idle.
        _rig.SetJobCpu("42", 300 * Ms);
        _rig.SetJobCpu("43", 200 * Ms);
        _rig.Proc.SetStat(60, 100, stealTicks: 40);
        _rig.SetCounters(900_000, 0, 0);
        node.Snapshot(1000 * Ms, 1000 * Ms);
        node.Flush();

        string nodeDir = NodeDir(node);
        Assert.Equal(450_000, Assert.Single(Package(nodeDir, "job:42")).Value);
        Assert.Equal(300_000, Assert.Single(Package(nodeDir, "job:43")).Value);
        Assert.Equal(150_000, Assert.Single(Package(nodeDir, "unattributed")).Value);
        node.Close(1000 * Ms, 1000 * Ms);
    }

    /// <summary>
    /// A sampler restarted (crash, kill -9) takes its registered jobs back: their cgroups' usage so far belongs to periods
    /// already gone, so the first period after the restart counts from the restart. It counted the whole usage since the
    /// job's start, so a long job took nearly all of that period's energy from the jobs beside it.
    /// </summary>
    [Fact]
    public void ARecoveredJobsFirstPeriodCountsFromTheRestartNotFromTheJobsStart()
    {
        var first = FromZero(out var cfg, ["42", "43"]);
        _rig.SetJobCpu("42", 500 * Ms);
        _rig.SetJobCpu("43", 300 * Ms);
        _rig.Proc.SetStat(100, 0);
        _rig.SetCounters(900_000, 0, 0);
        first.Snapshot(1000 * Ms, 1000 * Ms);
        first.Flush(); // then killed: no Close

        // While no sampler runs the jobs go on (job 42 to 3600 s, job 43 to 60 s); a new sampler takes them back.
        _rig.SetJobCpu("42", 3_600_000 * Ms);
        _rig.SetJobCpu("43", 60_000 * Ms);
        _rig.Proc.SetStat(366_100, 0);
        _rig.SetCounters(5_000_000, 0, 0);
        using var second = _rig.NewNode(cfg);
        foreach (var reg in NodeSampler.Unfinished(cfg.Paths.StateDir).OrderBy(r => r.Job.JobId, StringComparer.Ordinal))
            second.Register(reg, recovered: true, 0);
        // Its first period: job 42 0.5 s, job 43 0.3 s of a 1 s busy node.
        _rig.SetJobCpu("42", 3_600_500 * Ms);
        _rig.SetJobCpu("43", 60_300 * Ms);
        _rig.Proc.SetStat(366_200, 0);
        _rig.SetCounters(5_900_000, 0, 0);
        second.Snapshot(2000 * Ms, 2000 * Ms);
        second.Flush();

        Assert.Equal(new long[] { 450_000, 450_000 }, Package(JobDir(cfg, "42"), "job:42").Select(r => r.Value));
        Assert.Equal(new long[] { 270_000, 270_000 }, Package(JobDir(cfg, "43"), "job:43").Select(r => r.Value));
        second.Close(2000 * Ms, 2000 * Ms);
    }

    /// <summary>
    /// A restarted sampler takes its jobs back one after the other (each reopens its spool, which takes a while), and each
    /// registration took its job's CPU baseline then, after the constructor had read the counters and /proc/stat: the CPU
    /// time of a job while the ones before it were taken back was busy time of the node in its first period, but in no
    /// job's share (unattributed). The baselines, the counters and /proc/stat are now read at one instant, where its
    /// first period starts (<see cref="NodeSampler.Recover"/>, the daemon's recovery).
    /// </summary>
    [Fact]
    public void ARestartedSamplerTakesEveryRecoveredJobsBaselineAtTheInstantItsFirstPeriodStarts()
    {
        string[] ids = ["42", "43", "44"];
        var first = FromZero(out var cfg, ids);
        foreach (string id in ids) _rig.SetJobCpu(id, 100 * Ms);
        _rig.Proc.SetStat(30, 0);
        _rig.SetCounters(300_000, 0, 0);
        first.Snapshot(1000 * Ms, 1000 * Ms);
        first.Flush(); // then killed: no Close

        // While a job is taken back, every job runs 100 ms and the package counts 30 mJ.
        ulong taken = 0;
        void TakingBack()
        {
            taken++;
            foreach (string id in ids) _rig.SetJobCpu(id, (100 + 100 * taken) * Ms);
            _rig.Proc.SetStat(30 + 30 * taken, 0);
            _rig.SetCounters(300_000 + 30_000 * taken, 0, 0);
        }
        using var second = _rig.NewNode(cfg, beforeCgroupLookup: TakingBack);
        second.Recover(5 * Ms);
        Assert.Equal(3UL, taken);
        Assert.Equal(3, second.JobCount);
        // Its first period: each job 200 ms of the node's 600 ms busy, 0.6 J.
        foreach (string id in ids) _rig.SetJobCpu(id, 600 * Ms);
        _rig.Proc.SetStat(180, 0);
        _rig.SetCounters(990_000, 0, 0);
        second.Snapshot(1000 * Ms, 2000 * Ms);
        second.Flush();

        var period = NodeSamplerTests.Rows(NodeDir(second)).Where(x => x.R.WallNs == 2000 * Ms && x.Resource == "cpu_package:0")
            .ToDictionary(x => x.Consumer, x => x.R.Value);
        Assert.Equal(new long[] { 200_000, 200_000, 200_000, 0 }, new[] { "job:42", "job:43", "job:44", "unattributed" }.Select(c => period[c]));
        Assert.Equal(600_000, period["node"]);
        second.Close(1000 * Ms, 2000 * Ms);
    }
}
