using Alumet.Hpc.Jobs;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Tests.Fakes;

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

    public void Dispose() => _rig.Dispose();
}
