using Alumet.Hpc.Core;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Sampling;

/// <summary>Receives every read (raw storage), one call per source read: one lock and one dispatch per tick, not per channel.</summary>
public interface IRawReadSink
{
    /// <param name="wallNs">End of every read interval of the call (the read's wall stamp, each record's <see cref="SpoolRecord.WallNs"/>).</param>
    /// <param name="reads">One record per channel with something to store (its read did not fail and was not the
    /// counter's first): the read interval's length, raw delta and flags; its <see cref="SpoolRecord.Series"/> is the
    /// channel's index in the buffer (<see cref="MeasurementBuffer.Channels"/>), for the sink to replace by its own
    /// series id. Valid during the call only.</param>
    void OnReads(long wallNs, ReadOnlySpan<SpoolRecord> reads);
}

/// <summary>
/// The one measurement buffer of the node: every channel's wrap-safe running total (raw integer units) and what
/// happened to it since the last snapshot. Readers (the tick thread for fast sources, an own thread for NVML) call
/// <see cref="Read"/>; <see cref="TakeSnapshot"/> reads the fast sources once more and takes every total and flag at
/// that same instant, so an interval's energy and its flags always land on the same row.
/// Per channel, not per source: a channel whose reads failed gets, on recovery, the interval since its last good
/// read (for the wrap-ambiguity bound and the raw record) and the read-error flag.
/// </summary>
public sealed class MeasurementBuffer
{
    private readonly SourceSlot[] _slots;
    private readonly EnergyChannel[] _channels;
    private readonly bool[] _failing;
    private readonly int[] _flags;        // SpoolFlags since the last snapshot, per channel
    private readonly long[] _coveredNs;   // monotonic time the channel's good reads covered since the last snapshot
    private readonly ulong[] _snapTotals; // totals at the last snapshot

    public IReadOnlyList<SourceSlot> Slots => _slots;
    public IReadOnlyList<EnergyChannel> Channels => _channels;
    /// <summary>Set while raw storage is wanted: receives every delta as it is read.</summary>
    public volatile IRawReadSink? RawSink;
    /// <summary>Failed channel reads since start (status).</summary>
    public long ReadErrors;
    /// <summary>
    /// ctl pause: every read refused (false) while set. Set under every gate after the period the pause closes
    /// (NodeSampler.Pause): a tick, or an own thread's poll, that saw no pause yet reads nothing after that period's end.
    /// </summary>
    public volatile bool Paused;
    public long LastSnapshotNs { get; private set; }
    /// <summary>Wall stamp of the last snapshot (0 before the first): the rows of a period end after the previous period's.</summary>
    public long LastSnapshotWallNs { get; private set; }

    public MeasurementBuffer(IReadOnlyList<SourceSlot> slots, long startMonotonicNs)
    {
        _slots = slots.ToArray();
        var channels = new List<EnergyChannel>();
        foreach (var slot in _slots)
        {
            slot.FirstChannel = channels.Count;
            channels.AddRange(slot.Source.Channels);
        }
        _channels = channels.ToArray();
        int n = _channels.Length;
        _failing = new bool[n];
        _flags = new int[n];
        _coveredNs = new long[n];
        _snapTotals = new ulong[n];
        LastSnapshotNs = startMonotonicNs;
    }

    /// <summary>The first read of a source: its counters' base, stored nowhere (no wall stamp for later reads to follow).</summary>
    public void Prime(SourceSlot slot, long monotonicNs) => Read(slot, monotonicNs, 0);

    /// <summary>
    /// Starts the first period again at <paramref name="monotonicNs"/>, before any is closed (a restarted sampler, once it
    /// has taken its jobs back: NodeSampler.Recover): every source is read there, to no raw sink, and the energy since
    /// the constructor's prime is in no period, as if that read had been the prime.
    /// </summary>
    public void Reprime(long monotonicNs)
    {
        if (LastSnapshotWallNs != 0) throw new InvalidOperationException("a period has closed: the first one cannot start again");
        var sink = RawSink;
        RawSink = null;
        try
        {
            foreach (var slot in _slots)
                lock (slot.Gate)
                {
                    ReadLocked(slot, monotonicNs, 0);
                    for (int i = 0; i < slot.Raw.Length; i++)
                    {
                        int c = slot.FirstChannel + i;
                        (_snapTotals[c], _flags[c], _coveredNs[c]) = (slot.Counters[i].Total, 0, 0);
                    }
                }
            LastSnapshotNs = monotonicNs;
        }
        finally { RawSink = sink; }
    }

    /// <summary>
    /// Reads one source at the instant the caller stamped and accumulates its channels. Thread-safe per slot (its gate).
    /// A caller stamps before it waits for the gate: a read stamped no later than the slot's last read lost the race to
    /// a later-stamped one (tick vs snapshot) and is not taken, so per channel time only moves forward; false then.
    /// </summary>
    public bool Read(SourceSlot slot, long monotonicNs, long wallNs)
    {
        lock (slot.Gate) return ReadLocked(slot, monotonicNs, wallNs);
    }

    private bool ReadLocked(SourceSlot slot, long monotonicNs, long wallNs)
    {
        if (Paused || monotonicNs <= slot.LastReadNs) return false;
        wallNs = WallAfter(wallNs, slot.LastReadWallNs, monotonicNs, slot.LastReadNs);
        slot.LastReadNs = monotonicNs;
        slot.LastReadWallNs = wallNs;
        // The slot's arrays and this buffer's in locals: loaded once per read, not once per channel (1 kHz).
        ulong[] raw = slot.Raw;
        bool[] ok = slot.Ok;
        EnergyCounter[] counters = slot.Counters;
        slot.Source.Read(raw, ok, monotonicNs);
        var sink = RawSink;
        SpoolRecord[] reads = slot.Reads;
        bool[] failing = _failing;
        int[] flagsSince = _flags;
        long[] covered = _coveredNs;
        int first = slot.FirstChannel;
        int stored = 0;
        for (int i = 0; i < raw.Length; i++)
        {
            int c = first + i;
            if (!ok[i])
            {
                failing[c] = true;
                flagsSince[c] |= (int)SpoolFlags.ReadError;
                Interlocked.Increment(ref ReadErrors);
                continue;
            }
            ref var counter = ref counters[i];
            bool primed = counter.Primed;
            var step = counter.Read(raw[i], monotonicNs); // elapsed since this channel's last good read
            covered[c] += step.ElapsedNs;
            var flags = step.Flags;
            if (failing[c])
            {
                flags |= SpoolFlags.ReadError; // the delta spans the failed reads
                failing[c] = false;
            }
            flagsSince[c] |= (int)flags;
            // The raw record, stored unless this was the counter's first read (its base: nothing to store).
            if (primed) reads[stored++] = new SpoolRecord { WallNs = wallNs, IntervalNs = step.ElapsedNs, Value = (long)step.Delta, Series = c, Flags = flags };
        }
        if (stored > 0) sink?.OnReads(wallNs, reads.AsSpan(0, stored));
        return true;
    }

    /// <summary>
    /// A wall stamp that follows the monotonic order: the wall clock is read just after the monotonic one, so two
    /// readers' pairs can cross by a few µs; a stamp not after the previous one (<paramref name="lastWallNs"/>, 0 for
    /// none) becomes the previous one plus the monotonic time between them, so each row's end stays after the last.
    /// </summary>
    private static long WallAfter(long wallNs, long lastWallNs, long monotonicNs, long lastMonotonicNs) =>
        lastWallNs != 0 && wallNs <= lastWallNs ? lastWallNs + (monotonicNs - lastMonotonicNs) : wallNs;

    /// <summary>
    /// Closes the period: takes, for each channel, the energy since the previous snapshot and the flags of that interval.
    /// The period ends at the caller's instant, or at the latest read of any source when one was taken after it (the tick
    /// thread, or an own-thread source's, got its gate first): its stamps are then the snapshot's (<paramref name="monotonicNs"/> and
    /// <paramref name="wallNs"/> are moved there). Fast sources last read before that instant are read once more at it
    /// (not own-thread ones: NVML calls take a driver lock; their latest totals are used, and a read of theirs stamped
    /// before it is refused afterwards). Every gate is held throughout, so no read lands between the choice of the
    /// instant and the totals: every raw record's stamp is in the period whose split counted it. Returns the period's length; 0 when it is
    /// empty (nothing read after the previous snapshot's end: nothing is taken, the next period keeps it all).
    /// </summary>
    /// <param name="intervals">Per channel, the time its energy covers: from its last good read at or before the previous
    /// period's end to its last good read in this period (README "Timing"). For a fast source, read at the period's end, that is
    /// the period's length. For an own-thread source (NVML) its reads bound the energy, not the period's ends: its last read
    /// before each end is up to one read interval early, so the delta holds 9 to 11 reads' worth of a 10-read period, and
    /// the period's length there made a steady GPU's power swing ±1/(nvml_hz × period) from row to row and its peak
    /// that much high. A channel whose reads failed covered less (0 when none was good) or, on recovery, more: the
    /// whole time since its last good read (a period's length there made its power the energy of several periods over
    /// one).</param>
    public long TakeSnapshot(ref long monotonicNs, ref long wallNs, Span<ulong> delta, Span<SpoolFlags> flags, Span<long> intervals)
    {
        int held = 0;
        try
        {
            for (; held < _slots.Length; held++) _slots[held].Gate.Enter();
            long at = monotonicNs, atWall = wallNs;
            // An own thread's read too (NVML): its totals are taken below, so its raw record must not end after the period.
            foreach (var slot in _slots)
                if (slot.LastReadNs >= at) (at, atWall) = (slot.LastReadNs, slot.LastReadWallNs);
            if (at <= LastSnapshotNs) return 0;
            atWall = WallAfter(atWall, LastSnapshotWallNs, at, LastSnapshotNs);
            long interval = at - LastSnapshotNs;
            foreach (var slot in _slots)
            {
                if (slot.LastReadNs < at)
                {
                    if (!slot.OwnThread) ReadLocked(slot, at, atWall);
                    // Not read here (the driver lock): its read stamped before the period's end and still waiting for the
                    // gate is refused (Read), as a tick's is; its energy goes with its next read, in the next period.
                    else (slot.LastReadNs, slot.LastReadWallNs) = (at, atWall);
                }
                for (int i = 0; i < slot.Raw.Length; i++)
                {
                    int c = slot.FirstChannel + i;
                    ulong total = slot.Counters[i].Total;
                    delta[c] = total - _snapTotals[c];
                    _snapTotals[c] = total;
                    flags[c] = (SpoolFlags)_flags[c];
                    _flags[c] = 0;
                    intervals[c] = _coveredNs[c];
                    _coveredNs[c] = 0;
                }
            }
            LastSnapshotNs = at;
            LastSnapshotWallNs = atWall;
            (monotonicNs, wallNs) = (at, atWall);
            return interval;
        }
        finally
        {
            while (held > 0) _slots[--held].Gate.Exit();
        }
    }
}
