using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sampling;

/// <summary>What the scheduling loop runs: the node's pipeline, seen from the clock.</summary>
public interface ISamplingPlan
{
    /// <summary>Rate of the tick thread's reads now; 0 = no reads between snapshots (they read the counters themselves).</summary>
    double TickHz { get; }
    /// <summary>A fast source's rate in raw storage (divisor of the tick).</summary>
    double SlotHz(SourceSlot slot);
    bool RawStorage { get; }
    /// <summary>Run the tick thread at SCHED_FIFO 1 now (only at high rate).</summary>
    bool FifoTick { get; }
    bool Paused { get; }
    int PeriodMs { get; }
    int FlushIntervalMs { get; }
    void Snapshot(long monotonicNs, long wallNs);
    void Flush();
    /// <summary>Liveness and linger rules; false = stop.</summary>
    bool Housekeep(long monotonicNs);
    /// <summary>Set by the loop: the plan calls it when <see cref="TickHz"/> may have changed, so a tick thread with nothing to read sleeps until then.</summary>
    Action? RateChanged { get; set; }
}

/// <summary>
/// The scheduling loop, nothing else: the tick thread reads the fast sources (RAPL) on absolute deadlines at the
/// rate the plan asks now; sources marked <see cref="SourceSlot.OwnThread"/> (NVML) poll on their own thread; the
/// housekeeping thread calls the plan's snapshot every period, its flush every flush interval, and its liveness rules.
/// A thread with nothing due sleeps: no wake-up between snapshots, flushes and rate changes (the cost of an idle node
/// sampler is its snapshots, bench/README.md).
/// </summary>
public sealed class Sampler
{
    private readonly MeasurementBuffer buffer;
    private readonly ISamplingPlan plan;
    private readonly AutoResetEvent _wake = new(false);
    private volatile bool _rateChanged;
    private long _startNs;

    public LatencyHistogram Lateness { get; } = new();
    public long Ticks { get; private set; }
    public long MissedTicks { get; private set; }
    /// <summary>Monotonic ns of the first sample: the first tick-thread read or the first snapshot, whichever came first (startup latency), 0 before.</summary>
    public long FirstSampleNs { get; private set; }
    /// <summary>Wake-ups of the housekeeping thread (at most one per snapshot, flush or liveness check that is due).</summary>
    public long HousekeepingWakes { get; private set; }

    public Sampler(MeasurementBuffer buffer, ISamplingPlan plan)
    {
        this.buffer = buffer;
        this.plan = plan;
        plan.RateChanged = RateChanged;
    }
    public double AchievedHz => Ticks == 0 ? 0 : Ticks / ((Clock.MonotonicNs() - _startNs) / 1e9);

    /// <summary>The rate may have changed (a job registered or ended, ctl set): the tick thread re-reads it at once.</summary>
    public void RateChanged()
    {
        _rateChanged = true;
        _wake.Set();
    }

    /// <summary>
    /// Runs until <paramref name="token"/> is cancelled or the plan's housekeeping says stop. The caller closes the plan.
    /// The other threads (housekeeping, own-thread sources) start after the tick thread's first read, or at once when
    /// there is no tick: a thread start costs its caller until the new thread runs (NativeAOT's Thread.Start yields
    /// until then, a few ms on a loaded VM: README, Performance), so it is kept off the path to the first read.
    /// </summary>
    /// <param name="started">Runs once on the housekeeping thread before its first wait (the RAPL cross-check's start:
    /// <see cref="Jobs.SourceSet.StartCrossCheck"/>), off the tick thread.</param>
    public void Run(CancellationToken token, Action? started = null)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(token);
        _startNs = Clock.MonotonicNs();
        var threads = new List<Thread>();
        void StartOthers()
        {
            foreach (var slot in buffer.Slots.Where(s => s.OwnThread))
                threads.Add(Start($"source-{slot.Source.Name}", () => PollOwnThread(slot, stop.Token)));
            threads.Add(Start("housekeeping", () =>
            {
                RunStarted(started);
                Housekeeping(stop);
            }));
        }
        using (stop.Token.Register(() => _wake.Set())) TickLoop(stop.Token, StartOthers);
        foreach (var t in threads) t.Join();
    }

    private static void RunStarted(Action? started)
    {
        try { started?.Invoke(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Log.Warn($"sampler start-up check not run: {e.Message}"); }
    }

    private void TickLoop(CancellationToken token, Action startOthers)
    {
        var fast = buffer.Slots.Where(s => !s.OwnThread).ToArray();
        bool fifo = false, othersStarted = false;
        while (!token.IsCancellationRequested)
        {
            // SCHED_FIFO only in the tick loop below, which allocates and starts nothing (NodeSamplerTests.
            // TickReadsAllocateNothing). Here the other threads may start, and they would inherit SCHED_FIFO
            // (pthread_create's default): at raw storage from the start the housekeeping thread and every finalize-job
            // child it started ran real-time (RawRequestTests.OnlyTheTickThreadOfARawStorageSamplerIsRealTime), and two
            // such exports keep every SCHED_OTHER thread of a 2-CPU node waiting for RT throttling, up to 950 ms a second.
            // A rate change also allocates: at SCHED_FIFO a GC it triggered would wait there for threads it preempted.
            if (fifo) fifo = !Normal();
            _rateChanged = false;
            double hz = plan.Paused ? 0 : plan.TickHz;
            if (hz <= 0)
            {
                if (!othersStarted) { othersStarted = true; startOthers(); }
                _wake.WaitOne(); // until the rate changes or the loop stops (both set _wake)
                continue;
            }
            foreach (var s in fast) s.Divisor = plan.RawStorage ? Math.Max(1, (int)Math.Round(hz / plan.SlotHz(s))) : 1;
            var ticker = new Ticker(hz);
            // The first tick starts the other threads (below): at SCHED_OTHER, so that they are not real-time.
            if (othersStarted && plan.FifoTick) fifo = SetFifo();
            long tick = 0;
            while (ticker.WaitNext(token, out long deadline, out long now))
            {
                Lateness.Add(now - deadline);
                long wall = Clock.WallNs();
                tick++;
                foreach (var s in fast)
                    if (s.Divisor == 1 || tick % s.Divisor == 0) buffer.Read(s, now, wall); // no 64-bit division for the common divisor
                if (FirstSampleNs == 0) FirstSampleNs = Clock.MonotonicNs();
                Ticks++;
                if (!othersStarted)
                {
                    othersStarted = true;
                    startOthers();
                    break; // a new ticker from now: the time the starts took is not counted as missed ticks
                }
                if (_rateChanged) break; // re-read the rate
            }
            MissedTicks += ticker.Missed;
        }
        if (fifo) Normal(); // finalization is not real-time work
    }

    private bool _fifoRefusedSaid;

    /// <summary>
    /// SCHED_FIFO priority 1 for this (the tick) thread only, and only at high rate: measured on a loaded 2-vCPU VM,
    /// p99 lateness went from 200-1900 µs to 75-94 µs at 1 kHz. Without CAP_SYS_NICE it stays normal (said once).
    /// With SCHED_RESET_ON_FORK: a thread or process it ever created would start at SCHED_OTHER.
    /// </summary>
    private bool SetFifo()
    {
        if (Native.Libc.sched_setscheduler(0, Native.Libc.SCHED_FIFO | Native.Libc.SCHED_RESET_ON_FORK, 1) == 0) return true;
        if (!_fifoRefusedSaid) Log.Info("tick thread stays SCHED_OTHER (SCHED_FIFO not permitted): expect more tick lateness under load");
        _fifoRefusedSaid = true;
        return false;
    }

    /// <summary>Back to SCHED_OTHER (this thread); true when done.</summary>
    private static bool Normal() => Native.Libc.sched_setscheduler(0, Native.Libc.SCHED_OTHER, 0) == 0;

    private static Thread Start(string name, Action body)
    {
        var t = new Thread(() => body()) { Name = name, IsBackground = true };
        t.Start();
        return t;
    }

    private void PollOwnThread(SourceSlot slot, CancellationToken token)
    {
        var ticker = new Ticker(slot.Hz);
        while (ticker.WaitNext(token, out _))
        {
            if (plan.Paused) continue;
            try { buffer.Read(slot, Clock.MonotonicNs(), Clock.WallNs()); }
            catch (Exception e) { Log.Warn($"source {slot.Source.Name}: {e.Message}"); }
        }
    }

    /// <summary>Longest sleep of the housekeeping thread: the liveness and linger rules are checked at least this often.</summary>
    private const long MaxHousekeepingSleepNs = 1_000_000_000;

    private void Housekeeping(CancellationTokenSource stop)
    {
        long Ms(int ms) => ms * 1_000_000L;
        long now0 = Clock.MonotonicNs();
        // Flushes on the snapshots' schedule (same origin): with equal periods (the defaults) one wake does both.
        long nextSnapshot = now0 + Ms(plan.PeriodMs);
        long nextFlush = now0 + Ms(plan.FlushIntervalMs);
        long nextCheck = now0 + MaxHousekeepingSleepNs;
        bool failing = false;
        var cancelled = stop.Token.WaitHandle;
        while (!stop.IsCancellationRequested)
        {
            long due = Math.Min(nextCheck, Math.Min(nextSnapshot, nextFlush));
            long sleepNs = due - Clock.MonotonicNs();
            // Whole ms, rounded up: the wait's own granularity; cancellation wakes it at once.
            if (sleepNs > 0 && cancelled.WaitOne((int)((sleepNs + 999_999) / 1_000_000))) break;
            HousekeepingWakes++;
            long now = Clock.MonotonicNs();
            try
            {
                if (now >= nextSnapshot)
                {
                    if (!plan.Paused)
                    {
                        plan.Snapshot(now, Clock.WallNs());
                        if (FirstSampleNs == 0) FirstSampleNs = Clock.MonotonicNs();
                    }
                    nextSnapshot += Ms(plan.PeriodMs);
                    if (nextSnapshot <= now) nextSnapshot = now + Ms(plan.PeriodMs);
                }
                if (now >= nextFlush)
                {
                    plan.Flush();
                    nextFlush += Ms(plan.FlushIntervalMs);
                    if (nextFlush <= now) nextFlush = now + Ms(plan.FlushIntervalMs);
                }
                if (failing) Log.Info("spool writes work again");
                failing = false;
            }
            catch (IOException e)
            {
                // Disk full or gone: keep sampling (the counters keep the totals); one line per episode.
                if (!failing) Log.Error($"spool write failed: {e.Message}; sampling goes on, totals kept in the counters");
                failing = true;
            }
            nextCheck = now + MaxHousekeepingSleepNs;
            if (!plan.Housekeep(now)) stop.Cancel();
        }
    }
}
