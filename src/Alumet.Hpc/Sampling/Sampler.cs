using Alumet.Hpc.Attribution;
using Alumet.Hpc.Core;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Sampling;

/// <summary>
/// Reads the sources at their rates, accumulates raw counters wrap-safely, stores energy per interval into
/// the spool and splits it between consumers.
/// Threads: the tick thread reads the fast sources (RAPL, 1 kHz) on absolute deadlines and does nothing else;
/// sources marked <see cref="SourceSlot.OwnThread"/> (NVML) poll on their own thread; a housekeeping thread
/// stores periods, attributes, flushes and watches the job. Accumulated totals cross threads through
/// volatile 64-bit fields, so the tick thread never takes a lock unless it stores raw records.
/// Tests drive the same steps by hand with chosen clocks (<see cref="ReadSources"/>, <see cref="Store"/>,
/// <see cref="Attribute"/>): every number is reproducible.
/// </summary>
public sealed class Sampler
{
    private readonly SamplerSettings _settings;
    private readonly SourceSlot[] _slots;
    private readonly EnergyChannel[] _channels;
    private readonly JobAttribution? _attribution;
    private readonly SpoolWriter _spool;
    private readonly object _spoolGate = new();

    // Per channel, written by the owning reader thread, read by housekeeping.
    private readonly long[] _totals;
    private readonly int[] _ambiguous;
    private readonly int[] _implausible;
    private readonly int[] _readErrors;
    // Per channel, housekeeping only: what the last store and the last attribution had taken.
    private readonly Taken[] _stored;
    private readonly Taken[] _attributed;
    private long _lastStoreNs;
    private long _lastAttributionNs;
    // Series ids of the attribution records: [channel] -> first of (job, other_jobs, unattributed).
    private readonly int[] _shareSeries;
    // Steps seen so far: step name -> first series id (one per channel, in channel order).
    private readonly Dictionary<string, int> _stepSeries = new();
    private readonly string _spoolDirectory;

    public SpoolMeta Meta { get; }
    public IReadOnlyList<EnergyChannel> Channels => _channels;
    public LatencyHistogram Lateness { get; } = new();
    public long Ticks { get; private set; }
    public long MissedTicks { get; private set; }
    public StopReason? StopReason { get; private set; }
    /// <summary>Monotonic ns of the first read of the tick thread (startup latency).</summary>
    public long FirstSampleNs { get; private set; }
    public long RecordsWritten => _spool.RecordsWritten;
    /// <summary>Episodes of failed spool writes (state dir full), for the job's row.</summary>
    public IReadOnlyList<string> SpoolWriteFailures => _spool.WriteFailures;
    public string? StopDetail { get; private set; }

    public Sampler(SamplerSettings settings, IReadOnlyList<SourceSlot> slots, JobAttribution? attribution,
                   SpoolMeta meta, string spoolDirectory, long startMonotonicNs)
    {
        _settings = settings;
        _slots = slots.ToArray();
        _attribution = attribution;
        var channels = new List<EnergyChannel>();
        foreach (var slot in _slots)
        {
            slot.FirstChannel = channels.Count;
            slot.LastReadNs = startMonotonicNs;
            channels.AddRange(slot.Source.Channels);
        }
        _channels = channels.ToArray();
        int n = _channels.Length;
        _totals = new long[n];
        _ambiguous = new int[n];
        _implausible = new int[n];
        _readErrors = new int[n];
        _stored = new Taken[n];
        _attributed = new Taken[n];
        _lastStoreNs = _lastAttributionNs = startMonotonicNs;

        // Series 0..n-1: each channel as seen by the node; then (job, other_jobs, unattributed) per channel.
        meta.Series.Clear();
        foreach (var ch in _channels) meta.Series.Add(SeriesFor(ch, "node"));
        _shareSeries = new int[n];
        if (attribution is not null)
        {
            string job = $"job:{meta.JobId}";
            for (int c = 0; c < n; c++)
            {
                _shareSeries[c] = meta.Series.Count;
                meta.Series.Add(SeriesFor(_channels[c], job));
                meta.Series.Add(SeriesFor(_channels[c], "other_jobs"));
                meta.Series.Add(SeriesFor(_channels[c], "unattributed"));
            }
        }
        meta.StoragePeriodMs = settings.StoragePeriodMs;
        meta.AttributionPeriodMs = settings.AttributionPeriodMs;
        meta.AttributionMode = attribution is null ? "none" : attribution.Exclusive ? "exclusive" : "cgroup-cpu-time";
        foreach (var slot in _slots) meta.SourceHz[slot.Source.Name] = slot.Hz;
        Meta = meta;
        _spoolDirectory = spoolDirectory;
        _spool = new SpoolWriter(spoolDirectory, meta);
    }

    private static SpoolSeries SeriesFor(EnergyChannel ch, string consumer) => new()
    {
        Consumer = consumer,
        ResourceKind = ch.Resource.Kind.Wire(),
        ResourceId = ch.Resource.Id,
        Interface = ch.Interface.Wire(),
        JoulesPerUnit = ch.JoulesPerUnit,
        Label = ch.Label,
    };

    // ---------------------------------------------------------------- steps (also driven by tests)

    /// <summary>Reads every source once (tests; the running sampler reads each at its own rate).</summary>
    public void ReadSources(long monotonicNs, long wallNs)
    {
        foreach (var slot in _slots) ReadSlot(slot, monotonicNs, wallNs);
    }

    private void ReadSlot(SourceSlot slot, long monotonicNs, long wallNs)
    {
        slot.Source.Read(slot.Raw, slot.Ok, monotonicNs);
        slot.LastReadNs = monotonicNs;
        for (int i = 0; i < slot.Raw.Length; i++)
        {
            int c = slot.FirstChannel + i;
            if (!slot.Ok[i])
            {
                Interlocked.Increment(ref _readErrors[c]);
                continue;
            }
            bool primed = slot.Counters[i].Primed;
            var step = slot.Counters[i].Read(slot.Raw[i], monotonicNs);
            Volatile.Write(ref _totals[c], (long)slot.Counters[i].Total);
            if (step.Ambiguous) Interlocked.Increment(ref _ambiguous[c]);
            if (step.Implausible) Interlocked.Increment(ref _implausible[c]);
            if (_settings.Raw && primed)
            {
                var rec = new SpoolRecord
                {
                    WallNs = wallNs, IntervalNs = step.ElapsedNs, Value = (long)step.Delta, Series = c, Flags = step.Flags,
                };
                lock (_spoolGate) _spool.Append(in rec);
            }
        }
    }

    /// <summary>Stores each channel's node energy since the previous store (aggregated mode only).</summary>
    public void Store(long monotonicNs, long wallNs)
    {
        if (_settings.Raw) return;
        long interval = monotonicNs - _lastStoreNs;
        _lastStoreNs = monotonicNs;
        lock (_spoolGate)
        {
            for (int c = 0; c < _channels.Length; c++)
            {
                var (energy, flags) = Take(c, ref _stored[c]);
                var rec = new SpoolRecord { WallNs = wallNs, IntervalNs = interval, Value = (long)energy, Series = c, Flags = flags };
                _spool.Append(in rec);
            }
        }
    }

    /// <summary>Splits the energy since the previous attribution between job, other jobs and unattributed.</summary>
    public void Attribute(long monotonicNs, long wallNs)
    {
        if (_attribution is null) return;
        var cpu = _attribution.Sample(monotonicNs);
        long interval = monotonicNs - _lastAttributionNs;
        _lastAttributionNs = monotonicNs;
        lock (_spoolGate)
        {
            for (int c = 0; c < _channels.Length; c++)
            {
                var (energy, flags) = Take(c, ref _attributed[c]);

                var ch = _channels[c];
                CpuTimeSplit.Shares s;
                if (ch.Resource.Kind == ResourceKind.Gpu)
                    // A GPU belongs to the job it is allocated to, whole; otherwise nobody we know of.
                    s = _attribution.Exclusive || _attribution.JobGpus.Contains(ch.Resource.Id) ? CpuTimeSplit.Exclusive(energy) : new(0, 0, energy);
                else if (_attribution.Exclusive)
                    s = CpuTimeSplit.Exclusive(energy);
                else
                    s = CpuTimeSplit.Split(energy, cpu.JobNs, cpu.OtherJobsNs, cpu.NodeBusyNs);

                int first = _shareSeries[c];
                AppendShare(wallNs, interval, first, s.Job, flags);
                AppendShare(wallNs, interval, first + 1, s.OtherJobs, flags);
                AppendShare(wallNs, interval, first + 2, s.Unattributed, flags);

                // Steps: parts of the job's share by their own CPU time, same denominator (never added to the job).
                if (ch.Resource.Kind == ResourceKind.Gpu || _attribution.Exclusive) continue;
                foreach (var (step, stepNs) in cpu.Steps)
                {
                    var part = CpuTimeSplit.Split(energy, stepNs, 0, Math.Max(cpu.NodeBusyNs, cpu.JobNs + cpu.OtherJobsNs));
                    AppendShare(wallNs, interval, StepSeries(step) + c, part.Job, flags);
                }
            }
        }
    }

    /// <summary>First series id of a step, adding its series (and rewriting meta.json before any record uses them) when new.</summary>
    private int StepSeries(string step)
    {
        if (_stepSeries.TryGetValue(step, out int first)) return first;
        first = Meta.Series.Count;
        foreach (var ch in _channels) Meta.Series.Add(SeriesFor(ch, $"step:{Meta.JobId}.{step}"));
        SpoolWriter.WriteMeta(_spoolDirectory, Meta);
        _stepSeries[step] = first;
        return first;
    }

    /// <summary>A channel's accumulated total and flag counters as one consumer of them last took them.</summary>
    private struct Taken
    {
        public long Total;
        public int Ambiguous;
        public int Implausible;
        public int ReadErrors;
    }

    /// <summary>Energy since <paramref name="last"/> and the flags of what happened meanwhile; advances <paramref name="last"/>.</summary>
    private (ulong Energy, SpoolFlags Flags) Take(int c, ref Taken last)
    {
        long total = Volatile.Read(ref _totals[c]);
        int amb = Volatile.Read(ref _ambiguous[c]);
        int err = Volatile.Read(ref _readErrors[c]);
        int bad = Volatile.Read(ref _implausible[c]);
        var flags = (amb != last.Ambiguous ? SpoolFlags.WrapAmbiguous : 0) | (err != last.ReadErrors ? SpoolFlags.ReadError : 0)
                    | (bad != last.Implausible ? SpoolFlags.Implausible : 0);
        ulong energy = (ulong)(total - last.Total);
        last = new Taken { Total = total, Ambiguous = amb, Implausible = bad, ReadErrors = err };
        return (energy, flags);
    }

    private void AppendShare(long wallNs, long interval, int series, ulong value, SpoolFlags flags)
    {
        var rec = new SpoolRecord { WallNs = wallNs, IntervalNs = interval, Value = (long)value, Series = series, Flags = flags };
        _spool.Append(in rec);
    }

    public void Flush()
    {
        lock (_spoolGate) _spool.Flush();
    }

    /// <summary>Stores and attributes the last partial period, flushes and closes the spool.</summary>
    public void Complete(StopReason reason, string? detail, long monotonicNs, long wallNs)
    {
        StopReason ??= reason;
        StopDetail ??= detail;
        Store(monotonicNs, wallNs);
        Attribute(monotonicNs, wallNs);
        lock (_spoolGate) _spool.Dispose();
    }

    // ---------------------------------------------------------------- running

    /// <summary>Liveness rules checked by housekeeping; returns a reason to stop, or null.</summary>
    public Func<long, (StopReason Reason, string Detail)?>? Watchdog { get; set; }

    /// <summary>Runs until <paramref name="token"/> is cancelled or the watchdog ends it; then completes.</summary>
    public void Run(CancellationToken token)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(token);
        var threads = new List<Thread>();
        var mainSlots = _slots.Where(s => !s.OwnThread).ToArray();
        double baseHz = mainSlots.Length == 0 ? 0 : mainSlots.Max(s => s.Hz);
        foreach (var s in mainSlots) s.Divisor = Math.Max(1, (int)Math.Round(baseHz / s.Hz));

        foreach (var slot in _slots.Where(s => s.OwnThread))
            threads.Add(Start($"source-{slot.Source.Name}", () => PollOwnThread(slot, stop.Token)));
        threads.Add(Start("housekeeping", () => Housekeeping(stop)));

        // Prime every counter at start so the first stored interval covers the whole first period.
        long t0 = Clock.MonotonicNs(), w0 = Clock.WallNs();
        foreach (var s in mainSlots) ReadSlot(s, t0, w0);
        FirstSampleNs = Clock.MonotonicNs();

        if (mainSlots.Length > 0)
        {
            if (_settings.FifoTick) RaiseTickPriority();
            var ticker = new Ticker(baseHz);
            long tick = 0;
            while (ticker.WaitNext(stop.Token, out long deadline))
            {
                long now = Clock.MonotonicNs();
                Lateness.Add(now - deadline);
                long wall = Clock.WallNs();
                tick++;
                foreach (var s in mainSlots)
                    if (tick % s.Divisor == 0) ReadSlot(s, now, wall);
            }
            Ticks = tick;
            MissedTicks = ticker.Missed;
            if (_settings.FifoTick) Native.Libc.sched_setscheduler(0, Native.Libc.SCHED_OTHER, 0); // finalization is not real-time work
        }
        else
        {
            stop.Token.WaitHandle.WaitOne();
        }

        foreach (var t in threads) t.Join();
        long end = Clock.MonotonicNs(), wallEnd = Clock.WallNs();
        foreach (var s in _slots) ReadSlot(s, end, wallEnd);
        Complete(token.IsCancellationRequested ? Sampling.StopReason.Signal : StopReason ?? Sampling.StopReason.Signal, StopDetail, end, wallEnd);
    }

    /// <summary>
    /// SCHED_FIFO priority 1 for this (the tick) thread only: measured on a loaded 2-vCPU VM, p99 lateness went from
    /// 200-1900 µs to 75-94 µs. The thread sleeps between ticks and works ~30 µs per tick (~3 % of a CPU), and the
    /// lowest real-time priority stays under the kernel's RT throttling; without CAP_SYS_NICE it stays normal.
    /// </summary>
    private static void RaiseTickPriority()
    {
        if (Native.Libc.sched_setscheduler(0, Native.Libc.SCHED_FIFO, 1) != 0)
            Log.Info("tick thread stays SCHED_OTHER (SCHED_FIFO not permitted): expect more tick lateness under load");
    }

    private static Thread Start(string name, Action body)
    {
        var t = new Thread(() => body()) { Name = name, IsBackground = true };
        t.Start();
        return t;
    }

    private void PollOwnThread(SourceSlot slot, CancellationToken token)
    {
        ReadSlot(slot, Clock.MonotonicNs(), Clock.WallNs());
        var ticker = new Ticker(slot.Hz);
        while (ticker.WaitNext(token, out _))
        {
            try { ReadSlot(slot, Clock.MonotonicNs(), Clock.WallNs()); }
            catch (Exception e) { Log.Warn($"source {slot.Source.Name}: {e.Message}"); }
        }
    }

    private void Housekeeping(CancellationTokenSource stop)
    {
        int store = _settings.Raw ? int.MaxValue : _settings.StoragePeriodMs;
        int stepMs = Math.Min(100, Math.Min(store, Math.Min(_settings.AttributionPeriodMs, _settings.FlushIntervalMs)));
        var ticker = new Ticker(1000.0 / stepMs);
        long nextStore = _lastStoreNs + store * 1_000_000L;
        long nextAttr = _lastAttributionNs + _settings.AttributionPeriodMs * 1_000_000L;
        long nextFlush = Clock.MonotonicNs() + _settings.FlushIntervalMs * 1_000_000L;
        while (ticker.WaitNext(stop.Token, out _))
        {
            long now = Clock.MonotonicNs();
            long wall = Clock.WallNs();
            try
            {
                if (now >= nextStore) { Store(now, wall); nextStore += store * 1_000_000L; if (nextStore < now) nextStore = now + store * 1_000_000L; }
                if (now >= nextAttr) { Attribute(now, wall); nextAttr += _settings.AttributionPeriodMs * 1_000_000L; if (nextAttr < now) nextAttr = now; }
                if (now >= nextFlush) { Flush(); nextFlush = now + _settings.FlushIntervalMs * 1_000_000L; }
            }
            catch (IOException e)
            {
                // Disk full or gone: keep sampling (the counters keep the totals) and say why.
                Log.Error($"spool write failed: {e.Message}");
            }
            if (Watchdog?.Invoke(now) is { } end)
            {
                StopReason = end.Reason;
                StopDetail = end.Detail;
                Log.Warn($"sampler stopping: {end.Detail}");
                stop.Cancel();
            }
        }
    }
}
