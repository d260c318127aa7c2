using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Rapl;

/// <summary>RAPL energy counters through powercap sysfs; every <c>energy_uj</c> kept open and read with pread.</summary>
public sealed class RaplSource : IEnergySource
{
    private readonly SysfsCounterFile[] _files;

    public string Name => "rapl";
    public IReadOnlyList<EnergyChannel> Channels { get; }
    public IReadOnlyList<RaplZone> Zones { get; }

    public RaplSource(IReadOnlyList<RaplZone> zones)
    {
        Zones = zones;
        _files = zones.Select(z => new SysfsCounterFile(z.EnergyFile)).ToArray();
        // energy_uj takes values 0..max_energy_range_uj inclusive: the modulus is one more.
        Channels = zones.Select(z => new EnergyChannel(z.Resource, z.Interface, 1e-6, z.MaxEnergyRangeUj + 1, z.Name)).ToArray();
    }

    public void Read(Span<ulong> raw, Span<bool> ok, long monotonicNs)
    {
        for (int i = 0; i < _files.Length; i++)
            ok[i] = _files[i].TryReadCounter(out raw[i]);
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
