using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Rapl;

/// <summary>RAPL energy counters through powercap sysfs; every <c>energy_uj</c> kept open and read with pread.</summary>
public sealed class RaplSource : IEnergySource
{
    private readonly SysfsCounterFile[] _files; // own the descriptors
    private readonly int[] _fds;                // theirs, read on every tick: one small array, not one object per counter

    public string Name => "rapl";
    public IReadOnlyList<EnergyChannel> Channels { get; }
    public IReadOnlyList<RaplZone> Zones { get; }

    public RaplSource(IReadOnlyList<RaplZone> zones)
    {
        Zones = zones;
        _files = zones.Select(z => new SysfsCounterFile(z.EnergyFile)).ToArray();
        _fds = _files.Select(f => f.Fd).ToArray();
        // energy_uj takes values 0..max_energy_range_uj inclusive: the modulus is one more.
        Channels = zones.Select(z => new EnergyChannel(z.Resource, z.Interface, 1e-6, z.MaxEnergyRangeUj + 1, z.Name)).ToArray();
    }

    public void Read(Span<ulong> raw, Span<bool> ok, long monotonicNs)
    {
        var fds = _fds;
        Span<byte> buf = stackalloc byte[SysfsCounterFile.CounterBytes];
        for (int i = 0; i < fds.Length; i++)
            ok[i] = SysfsCounterFile.TryRead(fds[i], buf, out raw[i]);
    }

    public void Dispose()
    {
        _fds.AsSpan().Fill(-1); // a read after this fails rather than reading whatever file reuses the number
        foreach (var f in _files) f.Dispose();
    }
}
