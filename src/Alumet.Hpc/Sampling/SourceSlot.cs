using Alumet.Hpc.Core;
using Alumet.Hpc.Sources;

namespace Alumet.Hpc.Sampling;

/// <summary>A source with its rate and its per-channel accumulators; read under <see cref="Gate"/> by whoever reads it.</summary>
public sealed class SourceSlot
{
    public IEnergySource Source { get; }
    public double Hz { get; }
    /// <summary>Polled on a thread of its own (NVML: its calls serialize on a driver lock and must never delay RAPL).</summary>
    public bool OwnThread { get; }
    /// <summary>Index of this source's first channel in the measurement buffer.</summary>
    internal int FirstChannel;
    internal readonly EnergyCounter[] Counters;
    internal readonly ulong[] Raw;
    internal readonly bool[] Ok;
    /// <summary>The last read's raw records, handed to the raw sink (<see cref="IRawReadSink"/>; reused: no allocation per read).</summary>
    internal readonly Spool.SpoolRecord[] Reads;
    /// <summary>
    /// Serializes the tick thread's reads with a snapshot's read (uncontended almost always). Taken on every tick: a
    /// <see cref="Lock"/>, the runtime's dedicated lock type, rather than a Monitor on an object's header. Reentrant, as
    /// Monitor was: a registration holds every gate while its snapshot takes them again.
    /// </summary>
    internal readonly Lock Gate = new();
    internal int Divisor = 1;
    /// <summary>Monotonic and wall stamps of the slot's last read (under <see cref="Gate"/>): reads only move forward.</summary>
    internal long LastReadNs = long.MinValue;
    internal long LastReadWallNs;

    public SourceSlot(IEnergySource source, double hz, bool ownThread, double maxPowerW)
    {
        Source = source;
        Hz = hz;
        OwnThread = ownThread;
        int n = source.Channels.Count;
        Counters = new EnergyCounter[n];
        for (int i = 0; i < n; i++)
            Counters[i] = EnergyCounter.For(source.Channels[i], maxPowerW);
        Raw = new ulong[n];
        Ok = new bool[n];
        Reads = new Spool.SpoolRecord[n];
    }

    /// <summary>
    /// Its counters keep the bound they were made with whatever <c>[sampler] max_power_w</c> becomes: the BMC's
    /// node-wide <see cref="Sources.Bmc.BmcSource.MaxPlausibleW"/> (max_power_w bounds one domain: README "Implausible readings").
    /// </summary>
    public bool OwnBound { get; init; }

    /// <summary>Bounds every counter by <paramref name="maxPowerW"/> from its next reading on (<see cref="EnergyCounter.Rebound"/>), under the gate.</summary>
    internal void SetMaxPower(double maxPowerW)
    {
        lock (Gate)
            for (int i = 0; i < Counters.Length; i++) Counters[i] = Counters[i].Rebound(Source.Channels[i], maxPowerW);
    }

    /// <summary>
    /// Lowest read rate at which no second wrap can fit between two reads at <paramref name="maxPowerW"/> (with a 2×
    /// margin), over this slot's channels; 0 when none wraps.
    /// </summary>
    public double WrapSafeHz(double maxPowerW)
    {
        double hz = 0;
        foreach (var ch in Source.Channels)
            if (ch.Modulus != 0) hz = Math.Max(hz, 2 * maxPowerW / (ch.Modulus * ch.JoulesPerUnit));
        return hz;
    }
}
