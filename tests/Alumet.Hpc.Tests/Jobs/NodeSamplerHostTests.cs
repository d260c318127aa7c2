using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Sampling;

namespace Alumet.Hpc.Tests.Jobs;

/// <summary>The node daemon's request handler (what its socket answers) over a real node sampler and scheduling loop.</summary>
public sealed class NodeSamplerHostTests : IDisposable
{
    /// <summary>
    /// The node sampler's plan as the scheduling loop sees it, counting the loop's reads of the rate: it reads it once
    /// each time it starts over (a rate change stops its ticker and starts a new one). No tick (rate 0): the loop waits
    /// for the next change.
    /// </summary>
    private sealed class CountingPlan(NodeSampler node) : ISamplingPlan
    {
        public readonly SemaphoreSlim RateRead = new(0);
        public double TickHz
        {
            get
            {
                RateRead.Release();
                return 0;
            }
        }
        public double SlotHz(SourceSlot slot) => node.SlotHz(slot);
        public bool RawStorage => false;
        public bool FifoTick => false;
        public bool Paused => false;
        public int PeriodMs => 3_600_000;
        public int FlushIntervalMs => 3_600_000;
        public void Snapshot(long monotonicNs, long wallNs) { }
        public void Flush() { }
        public bool Housekeep(long monotonicNs) => true;
        public Action? RateChanged { get; set; }
    }

    private readonly NodeRig _rig = new();

    /// <summary>
    /// A registration and an end each restart the tick loop once: they tell it themselves (NodeSampler.Rebuild), and the
    /// request handler told it again, a second restart of its ticker for nothing (at raw storage: out of SCHED_FIFO and
    /// back). Each change is let through to the loop's read of the rate before the request goes on, so a second telling
    /// cannot merge with the first.
    /// </summary>
    [Fact]
    public void ARegistrationAndAnEndRestartTheTickLoopOnceEach()
    {
        var cfg = _rig.Config();
        _rig.AtZero("42");
        using var node = _rig.NewNode(cfg);
        var plan = new CountingPlan(node);
        var sampler = new Sampler(node.Buffer, plan);
        node.RateChanged = () =>
        {
            plan.RateChanged!();
            Assert.True(plan.RateRead.Wait(10_000), "the tick loop did not read the rate after the change");
        };
        using var stop = new CancellationTokenSource();
        var loop = new Thread(() => sampler.Run(stop.Token)) { IsBackground = true };
        loop.Start();
        try
        {
            Assert.True(plan.RateRead.Wait(10_000), "the tick loop did not start");
            Assert.StartsWith("ok job 42 registered", NodeSamplerHost.Handle(node, sampler, "register " + NodeRig.Job("42").ToLine()));
            Assert.False(plan.RateRead.Wait(500), "the tick loop started over a second time after the registration");
            Assert.StartsWith("ok complete", NodeSamplerHost.Handle(node, sampler, "end scheduler=slurm job=42"));
            Assert.False(plan.RateRead.Wait(500), "the tick loop started over a second time after the end");
        }
        finally
        {
            stop.Cancel();
            loop.Join();
            node.RateChanged = null; // no loop to tell any more
            node.Close(Alumet.Hpc.Core.Clock.MonotonicNs(), Alumet.Hpc.Core.Clock.WallNs());
        }
    }

    /// <summary>
    /// A registration closes the period (its job's first interval starts there), and the schedule's snapshot then came at
    /// its time whatever the period since: a prolog a few ms before it left a row of a few ms in every file of the node,
    /// whose power (energy / interval) is mostly the RAPL counter's ~1 ms refresh. The schedule's snapshot is now skipped
    /// when the period open began less than half a period before it, so that period ends at the next one, on the node's
    /// grid (here 1.02 s instead of 20 ms then 1 s); the registration still closes the period where it came, and every
    /// interval conserves. The registration goes through the socket's handler (the prolog's path, the real clock); the
    /// schedule's snapshots are the loop's calls (<see cref="ISamplingPlan.Snapshot"/>) at the grid's times.
    /// </summary>
    [Fact]
    public void ARegistrationAFewMsBeforeADueSnapshotLeavesNoPeriodOfAFewMsAfterIt()
    {
        // The prolog must come before the due snapshot: a machine so loaded that it came after it tries again.
        for (int attempt = 0; attempt < 5; attempt++)
            if (RegistrationBeforeADueSnapshot(aheadNs: 20 * Ms)) return;
        Assert.Fail("in 5 attempts no registration came within 20 ms before the due snapshot (the machine is too loaded)");
    }

    private const long Ms = 1_000_000;

    /// <summary>
    /// Job 42 from the node's start S (1.5 s ago); the grid S + k s; job 43's prolog <paramref name="aheadNs"/> before
    /// S + 2 s. False when its registration came at or after that time (nothing asserted then).
    /// </summary>
    private static bool RegistrationBeforeADueSnapshot(long aheadNs)
    {
        const long Period = 1000 * Ms;
        using var rig = new NodeRig();
        var cfg = rig.Config(storageMs: 1000);
        rig.AtZero("42", "43");
        long t0 = Clock.MonotonicNs(), wall0 = Clock.WallNs();
        long s = t0 - 3 * Period / 2, g1 = s + Period, g2 = g1 + Period, g3 = g2 + Period;
        long Wall(long mono) => wall0 + (mono - t0);
        static void Until(long mono)
        {
            for (long left; (left = mono - Clock.MonotonicNs()) > 0;) Thread.Sleep((int)(left / Ms) + 1);
        }
        using var node = rig.NewNode(cfg, startMonotonicNs: s);
        var plan = (ISamplingPlan)node; // what the scheduling loop calls (Sampler.Housekeeping)
        var sampler = new Sampler(node.Buffer, node);
        // The jobs' CPU time, the node's busy ticks and the package counter at the next snapshot (or registration).
        void Then(ulong job42Ms, ulong job43Ms, ulong busyTicks, ulong packageUj)
        {
            rig.SetJobCpu("42", job42Ms * Ms);
            rig.SetJobCpu("43", job43Ms * Ms);
            rig.Proc.SetStat(busyTicks, 0);
            rig.SetCounters(packageUj, 0, 0);
        }
        void ScheduledAt(long g)
        {
            Until(g);
            plan.Snapshot(g, Wall(g));
        }
        node.Register(NodeRig.Job("42"), false, s, Wall(s));
        Then(600, 0, 100, 1_000_000); // period 1 (S to S + 1 s): job 42 600 ms of the node's 1 s busy; 1 J
        ScheduledAt(g1);
        Then(1190, 0, 198, 1_980_000); // to job 43's prolog: job 42 590 ms more of 980 ms busy, 0.98 J
        Until(g2 - aheadNs);
        Assert.StartsWith("ok job 43 registered", NodeSamplerHost.Handle(node, sampler, "register " + NodeRig.Job("43").ToLine()));
        long r = node.Buffer.LastSnapshotNs; // where the registration closed the period
        if (r >= g2)
        {
            node.Close(r, Wall(r));
            return false;
        }
        Then(1200, 10, 200, 2_000_000); // to the due snapshot: each job 10 ms of 20 ms busy, 20 mJ
        ScheduledAt(g2);
        Then(1700, 510, 300, 3_000_000); // then a whole period: each job 500 ms of 1 s busy, 1 J
        ScheduledAt(g3);
        node.Flush();

        // The package rows of each consumer in the node's file: (interval µs, µJ). Job 43's first period runs from its
        // registration to the snapshot after the one it came just before.
        string nodeDir = Directory.GetDirectories(Path.Combine(node.StateRoot, NodeSpool.Directory)).Single();
        var rows = NodeSamplerTests.Rows(nodeDir);
        (long, long)[] Package(string consumer) =>
            rows.Where(x => x.Consumer == consumer && x.Resource == "cpu_package:0").Select(x => (x.R.IntervalNs / 1000, x.R.Value)).ToArray();
        long before = (r - g1) / 1000, after = (g3 - r) / 1000;
        Assert.Equal(new (long, long)[] { (1_000_000, 1_000_000), (before, 980_000), (after, 1_020_000) }, Package("node"));
        Assert.Equal(new (long, long)[] { (1_000_000, 600_000), (before, 590_000), (after, 510_000) }, Package("job:42"));
        Assert.Equal(new (long, long)[] { (after, 510_000) }, Package("job:43"));
        Assert.Equal(new (long, long)[] { (1_000_000, 400_000), (before, 390_000), (after, 0) }, Package("unattributed"));
        Conservation.AssertEveryInterval(nodeDir, 3 * 3); // the three periods above, per counter
        // In its own file too: one row, from its registration to the grid's next but one time.
        var own = NodeSamplerTests.Rows(NodeRig.Job("43").Job.StateDirectory(cfg.Paths.StateDir))
            .Where(x => x.Consumer == "job:43" && x.Resource == "cpu_package:0").Select(x => (x.R.WallNs, x.R.IntervalNs / 1000, x.R.Value));
        Assert.Equal(new (long, long, long)[] { (Wall(g3), after, 510_000) }, own);
        node.Close(g3, Wall(g3));
        return true;
    }

    public void Dispose() => _rig.Dispose();
}
