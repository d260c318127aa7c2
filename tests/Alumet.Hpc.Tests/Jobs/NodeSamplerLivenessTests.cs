using Alumet.Hpc.Attribution;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Jobs;

/// <summary>No orphans: a job whose cgroup is gone, never appears, or outlives its bound is ended by the node sampler with the reason; an empty sampler lingers, then exits.</summary>
public class NodeSamplerLivenessTests : IDisposable
{
    private readonly PowercapTree _powercap = PowercapTree.Standard(1);
    private readonly ProcTree _proc = new();
    private readonly CgroupTree _cgroups = new();
    private readonly TempTree _dir = new("host");
    private readonly JobRegistration _job = new(new JobIdentity("slurm", "c", "77", "alice", 1000, "n1"), null, null, false, false, 1);

    public void Dispose()
    {
        _powercap.Dispose(); _proc.Dispose(); _cgroups.Dispose(); _dir.Dispose();
    }

    private AlumetConfig Config()
    {
        var cfg = new AlumetConfig();
        cfg.Paths.PowercapRoot = _powercap.Root;
        cfg.Paths.ProcfsRoot = _proc.Root;
        cfg.Paths.StateDir = _dir.PathOf("state");
        cfg.Paths.DataDir = _dir.PathOf("data");
        cfg.Paths.Database = _dir.PathOf("accounting.db");
        cfg.Paths.LogFile = _dir.PathOf("log");
        cfg.Sources.Nvml = "off";
        cfg.Sampler.StoragePeriodMs = 100;
        cfg.Sampler.FlushIntervalMs = 100;
        return cfg;
    }

    /// <summary>Runs the real scheduling loop until the sampler stops by itself; returns how long it took.</summary>
    private TimeSpan Run(AlumetConfig cfg, bool stopWhenEmpty, Action? during = null)
    {
        using var sources = SourceFactory.Create(cfg, null);
        using var node = new NodeSampler(cfg, sources, Clock.MonotonicNs())
        {
            StopWhenEmpty = stopWhenEmpty,
            Locators = (_, _) => new DirectoryJobLocator(_cgroups.PathOf("cpuacct", "slurm", "uid_1000"), CgroupVersion.V1),
        };
        node.Register(_job, false, Clock.MonotonicNs());
        using var safety = new CancellationTokenSource(TimeSpan.FromSeconds(20)); // the test fails rather than hangs
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var t = new Thread(() => new Sampler(node.Buffer, node).Run(safety.Token));
        t.Start();
        during?.Invoke();
        t.Join();
        Assert.False(safety.IsCancellationRequested, "the liveness rules did not end the sampler");
        node.Close(Clock.MonotonicNs(), Clock.WallNs());
        return sw.Elapsed;
    }

    private JobRecord Row(AlumetConfig cfg)
    {
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        return Assert.Single(db.GetJob("77"));
    }

    [Fact]
    public void JobCgroupGoneLongerThanTheGraceEndsThePartialRow()
    {
        var cfg = Config();
        cfg.Sampler.JobGoneGraceS = 0.5;
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_77", 0);
        Run(cfg, stopWhenEmpty: true, () =>
        {
            Thread.Sleep(600);
            _cgroups.Remove("cpuacct/slurm/uid_1000/job_77"); // the job ended, no epilog came
        });
        var row = Row(cfg);
        Assert.Equal(JobStatus.Partial, row.Status);
        Assert.Contains("job cgroup gone", row.Reason);
    }

    [Fact]
    public void JobCgroupThatNeverAppearsEndsTheJob()
    {
        var cfg = Config();
        cfg.Sampler.CgroupWaitS = 0.5;
        var took = Run(cfg, stopWhenEmpty: true);
        Assert.Contains("job cgroup not found within 0.5 s", Row(cfg).Reason);
        Assert.True(took < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void MaximumLifetimeEndsTheJob()
    {
        var cfg = Config();
        cfg.Sampler.MaxLifetimeH = 0.5 / 3600; // half a second
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_77", 0);
        Run(cfg, stopWhenEmpty: true);
        Assert.Equal(JobStatus.Partial, Row(cfg).Status);
        Assert.Contains("maximum lifetime", Row(cfg).Reason);
    }

    [Fact]
    public void AnEmptyNodeSamplerLingersThenExits()
    {
        var cfg = Config();
        cfg.Sampler.MaxLifetimeH = 0.3 / 3600; // the job ends after 0.3 s ...
        cfg.Sampler.LingerS = 1;                // ... and the sampler 1 s later
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_77", 0);
        var took = Run(cfg, stopWhenEmpty: false);
        Assert.InRange(took.TotalSeconds, 1.2, 5);
    }

    /// <summary>
    /// Issue 8 (cost at the defaults): the housekeeping of 16 jobs reads no job's finalized marker while no other process
    /// finalized one, and wakes once per period (snapshot and flush together), not 10 times. An epilog that gave up on the
    /// sampler and finalized a job from its spool (the real fallback path, no socket here) still makes the running
    /// sampler drop that job: one read of each job's marker, then none again. On 722bf85 every wake (10 per second)
    /// read two markers per job: 16 jobs × 2 × ~10 per period.
    /// </summary>
    [Fact]
    public void HousekeepingReadsNoMarkerPerJobAndWakesOncePerPeriodUntilAnEpilogFinalizesElsewhere()
    {
        var cfg = Config();
        cfg.Sampler.StoragePeriodMs = 1000; // the defaults
        cfg.Sampler.FlushIntervalMs = 1000;
        cfg.Sampler.LingerS = 60;
        using var sources = SourceFactory.Create(cfg, null);
        using var node = new NodeSampler(cfg, sources, Clock.MonotonicNs())
        {
            Locators = (_, _) => new DirectoryJobLocator(_cgroups.PathOf("cpuacct", "slurm", "uid_1000"), CgroupVersion.V1),
        };
        var jobs = Enumerable.Range(1, 16).Select(i => new JobRegistration(new JobIdentity("slurm", "c", $"{100 + i}", "alice", 1000, "n1"), null, null, false, false, 1)).ToList();
        foreach (var j in jobs)
        {
            _cgroups.SetV1Usage($"cpuacct/slurm/uid_1000/job_{j.Job.JobId}", 1_000_000);
            node.Register(j, false, Clock.MonotonicNs());
        }
        long registered = node.Snapshots; // each registration closed a period (NodeSampler.Register): not the housekeeping's
        WhileSampling(node, (sampler, t) =>
        {
            Wait(() => node.Snapshots >= registered + 3, "three snapshots");
            long wakes = sampler.HousekeepingWakes, snapshots = node.Snapshots - registered;
            Assert.Equal(0, node.MarkerReads);
            Assert.InRange(wakes, snapshots - 1, snapshots + 1); // one wake per period, not ten

            var victim = jobs[5].Job;
            // The epilog takes the victim's spool over (a new inode), finalizes it, then writes its marker and the signal: a
            // flush between the two saw the spool detached, and each pass until the marker read it not yet there (17 or
            // 18 reads at load 8-12). Between two passes, so that the next flush sees the spool detached and the signal
            // together: each job's marker once, whatever the load.
            BetweenPasses(sampler, sources, () =>
            {
                var result = SamplerLauncher.StopAndFinalize(victim, cfg); // nothing answers: finalized from the spool
                Assert.Equal(JobStatus.Partial, result.Status);
            });
            Wait(() => node.JobCount == 15, "the sampler dropping the job its epilog finalized");
            long after = node.Snapshots;
            Wait(() => node.Snapshots >= after + 2, "two more snapshots"); // that housekeeping pass is over, and one more
            Assert.Equal(16, node.MarkerReads); // each job's marker once, after the signal; none since
            Assert.True(t.IsAlive, "the sampler goes on for the other 15 jobs");
        });
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        Assert.Equal(JobStatus.Partial, Assert.Single(db.GetJob(jobs[5].Job.JobId)).Status);
    }

    /// <summary>
    /// Issue 8: at the defaults there is no tick thread, so the first sample is the first snapshot; on 722bf85 only a tick
    /// set <see cref="Sampler.FirstSampleNs"/>, and the start-up-to-first-sample figure was lost. ctl status shows it.
    /// </summary>
    [Fact]
    public void AtTheDefaultsTheFirstSnapshotIsTheFirstSampleAndStatusShowsIt()
    {
        var cfg = Config();
        cfg.Sampler.StoragePeriodMs = 1000;
        cfg.Sampler.FlushIntervalMs = 1000;
        _cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_77", 0);
        using var sources = SourceFactory.Create(cfg, null);
        long start = Clock.MonotonicNs();
        using var node = new NodeSampler(cfg, sources, start)
        {
            OriginNs = start,
            Locators = (_, _) => new DirectoryJobLocator(_cgroups.PathOf("cpuacct", "slurm", "uid_1000"), CgroupVersion.V1),
        };
        node.Register(_job, false, start);
        WhileSampling(node, (sampler, _) =>
        {
            Wait(() => node.Snapshots >= 1, "the first snapshot");
            Wait(() => sampler.FirstSampleNs > 0, "the first sample"); // set just after the snapshot, on the same thread
            Assert.Equal(0, node.TickHz);
            Assert.Equal(0, sampler.Ticks);
            string status = NodeSamplerHost.Handle(node, sampler, "status");
            string line = status.Split('\n').Single(l => l.StartsWith("first_sample_ms: ", StringComparison.Ordinal));
            // The first snapshot closes the first period: never before one period after the start.
            Assert.True(double.Parse(line["first_sample_ms: ".Length..], System.Globalization.CultureInfo.InvariantCulture) >= 1000, line);
            // What the managed heap holds (README Performance): the spools' buffers alone are 2 MiB each.
            var gc = System.Text.RegularExpressions.Regex.Match(status, @"\ngc_kb: heap (\d+) committed (\d+) allocated (\d+) collections \d+/\d+/\d+ pause_ms \d+\.\d{3}\n");
            Assert.True(gc.Success, status);
            Assert.True(long.Parse(gc.Groups[3].Value) >= 2 * 2048, gc.Value); // the job's and the node's spool
            Assert.True(long.Parse(gc.Groups[2].Value) >= long.Parse(gc.Groups[1].Value), gc.Value);
        });
    }

    /// <summary>Runs the real scheduling loop on its own thread during <paramref name="body"/>, then stops and closes it.</summary>
    private static void WhileSampling(NodeSampler node, Action<Sampler, Thread> body)
    {
        var sampler = new Sampler(node.Buffer, node);
        using var stop = new CancellationTokenSource();
        var t = new Thread(() => sampler.Run(stop.Token));
        t.Start();
        try { body(sampler, t); }
        finally
        {
            stop.Cancel();
            t.Join();
            node.Close(Clock.MonotonicNs(), Clock.WallNs());
        }
    }

    /// <summary>
    /// Runs <paramref name="body"/> between two housekeeping passes: every source's gate held, once a pass has started since
    /// they were taken (so the one running then is over); that pass and the next wait for the gates in their snapshot,
    /// before their flush (snapshots and flushes are due together), and a pass with no snapshot flushes nothing. A pass
    /// that started before the gates were taken and waits for them in its snapshot (no pass starts after it) is let go,
    /// and the gates taken again.
    /// </summary>
    private static void BetweenPasses(Sampler sampler, SourceSet sources, Action body)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), "waited 60 s for a housekeeping pass");
            foreach (var slot in sources.Slots) slot.Gate.Enter();
            try
            {
                long wakes = sampler.HousekeepingWakes;
                var wait = System.Diagnostics.Stopwatch.StartNew();
                while (sampler.HousekeepingWakes == wakes && wait.Elapsed < TimeSpan.FromSeconds(3)) Thread.Sleep(5);
                if (sampler.HousekeepingWakes != wakes)
                {
                    body();
                    return;
                }
            }
            finally
            {
                for (int i = sources.Slots.Count - 1; i >= 0; i--) sources.Slots[i].Gate.Exit();
            }
        }
    }

    /// <summary>Polls <paramref name="done"/> (bounded: the test fails rather than hangs); no timing is asserted.</summary>
    private static void Wait(Func<bool> done, string what)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!done())
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"waited 30 s for {what}");
            Thread.Sleep(20);
        }
    }
}
