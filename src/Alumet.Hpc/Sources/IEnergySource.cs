using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources;

/// <summary>
/// A set of energy counters read together at one rate. Implementations keep their files/handles open and
/// do not allocate in <see cref="Read"/>: it runs up to 1000 times a second.
/// </summary>
public interface IEnergySource : IDisposable
{
    /// <summary>"rapl", "estimate", "nvml".</summary>
    string Name { get; }

    IReadOnlyList<EnergyChannel> Channels { get; }

    /// <summary>Reads every channel's raw counter into <paramref name="raw"/>; <paramref name="ok"/>[i] is false when channel i failed.</summary>
    void Read(Span<ulong> raw, Span<bool> ok, long monotonicNs);
}
