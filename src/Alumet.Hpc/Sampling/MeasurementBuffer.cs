using Alumet.Hpc.Core;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Sampling;

/// <summary>Receives every read delta (raw storage): channel, end of the read interval, its length, raw delta, flags.</summary>
public interface IRawReadSink
{
    void OnRead(int channel, long wallNs, long intervalNs, ulong delta, SpoolFlags flags);
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
    private readonly ulong[] _snapTotals; // totals at the last snapshot

    public IReadOnlyList<SourceSlot> Slots => _slots;
    public IReadOnlyList<EnergyChannel> Channels => _channels;
    /// <summary>Set while raw storage is wanted: receives every delta as it is read.</summary>
    public volatile IRawReadSink? RawSink;
    /// <summary>Failed channel reads since start (status).</summary>
    public long ReadErrors;
    public long LastSnapshotNs { get; private set; }

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
        _snapTotals = new ulong[n];
        LastSnapshotNs = startMonotonicNs;
    }

    /// <summary>Reads one source now and accumulates its channels. Thread-safe per slot (its gate).</summary>
    public void Read(SourceSlot slot, long monotonicNs, long wallNs)
    {
        lock (slot.Gate) ReadLocked(slot, monotonicNs, wallNs);
    }

    private void ReadLocked(SourceSlot slot, long monotonicNs, long wallNs)
    {
        slot.Source.Read(slot.Raw, slot.Ok, monotonicNs);
        var sink = RawSink;
        for (int i = 0; i < slot.Raw.Length; i++)
        {
            int c = slot.FirstChannel + i;
            if (!slot.Ok[i])
            {
                _failing[c] = true;
                _flags[c] |= (int)SpoolFlags.ReadError;
                Interlocked.Increment(ref ReadErrors);
                continue;
            }
            bool primed = slot.Counters[i].Primed;
            var step = slot.Counters[i].Read(slot.Raw[i], monotonicNs); // elapsed since this channel's last good read
            var flags = step.Flags;
            if (_failing[c])
            {
                flags |= SpoolFlags.ReadError; // the delta spans the failed reads
                _failing[c] = false;
            }
            _flags[c] |= (int)flags;
            if (primed) sink?.OnRead(c, wallNs, step.ElapsedNs, step.Delta, flags);
        }
    }

    /// <summary>
    /// Reads every fast source (not own-thread ones: NVML calls take a driver lock; their latest totals are used)
    /// and takes, for each channel, the energy since the previous snapshot and the flags of that interval.
    /// </summary>
    public long TakeSnapshot(long monotonicNs, long wallNs, Span<ulong> delta, Span<SpoolFlags> flags)
    {
        foreach (var slot in _slots)
        {
            lock (slot.Gate)
            {
                if (!slot.OwnThread) ReadLocked(slot, monotonicNs, wallNs);
                for (int i = 0; i < slot.Raw.Length; i++)
                {
                    int c = slot.FirstChannel + i;
                    ulong total = slot.Counters[i].Total;
                    delta[c] = total - _snapTotals[c];
                    _snapTotals[c] = total;
                    flags[c] = (SpoolFlags)_flags[c];
                    _flags[c] = 0;
                }
            }
        }
        long interval = monotonicNs - LastSnapshotNs;
        LastSnapshotNs = monotonicNs;
        return interval;
    }
}
