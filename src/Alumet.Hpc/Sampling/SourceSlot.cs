using Alumet.Hpc.Core;
using Alumet.Hpc.Sources;

namespace Alumet.Hpc.Sampling;

/// <summary>A source with its rate and its per-channel accumulators; owned by the one thread that reads it.</summary>
public sealed class SourceSlot
{
    public IEnergySource Source { get; }
    public double Hz { get; }
    /// <summary>Polled on a thread of its own (NVML: its calls serialize on a driver lock and must never delay RAPL).</summary>
    public bool OwnThread { get; }
    /// <summary>Index of this source's first channel in the sampler's global channel table.</summary>
    internal int FirstChannel;
    internal readonly EnergyCounter[] Counters;
    internal readonly ulong[] Raw;
    internal readonly bool[] Ok;
    internal long LastReadNs;
    internal int Divisor = 1;

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
    }
}
