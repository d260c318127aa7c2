using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Rapl;

/// <summary>RAPL energy counters through powercap sysfs; every <c>energy_uj</c> kept open and read with pread.</summary>
public sealed class RaplSource : IEnergySource
{
    private readonly SysfsCounterFile[] _files;
    /// <summary>The files' descriptors, read in one loop on the tick (no object per counter to load); -1 once disposed.</summary>
    private readonly int[] _fds;

    public string Name => "rapl";
    public IReadOnlyList<EnergyChannel> Channels { get; }
    public IReadOnlyList<RaplZone> Zones { get; }

    public RaplSource(IReadOnlyList<RaplZone> zones)
    {
        Zones = zones;
        _files = zones.Select(z => new SysfsCounterFile(z.EnergyFile)).ToArray();
        _fds = _files.Select(f => f.Descriptor).ToArray();
        // energy_uj takes values 0..max_energy_range_uj inclusive: the modulus is one more.
        Channels = zones.Select(z => new EnergyChannel(z.Resource, z.Interface, 1e-6, z.MaxEnergyRangeUj + 1, z.Name)).ToArray();
    }

    /// <summary>Every counter by <see cref="SysfsCounterFile.TryReadCounter(out ulong)"/>'s read and parse, into one stack buffer.</summary>
    [System.Runtime.CompilerServices.SkipLocalsInit] // the buffer is read only where pread or FillPad wrote it
    public unsafe void Read(Span<ulong> raw, Span<bool> ok, long monotonicNs)
    {
        byte* buf = stackalloc byte[SysfsCounterFile.CounterBufferBytes];
        SysfsCounterFile.FillPad(buf);
        int[] fds = _fds;
        for (int i = 0; i < fds.Length; i++)
            ok[i] = SysfsCounterFile.TryReadCounter(fds[i], buf, out raw[i]);
    }

    public void Dispose()
    {
        Array.Fill(_fds, -1); // a read after this fails rather than reading whatever file reuses the number
        foreach (var f in _files) f.Dispose();
    }
}
