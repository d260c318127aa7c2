using System.Runtime.InteropServices;

namespace Alumet.Hpc.Spool;

/// <summary>
/// One fixed-size record of the append-only spool: the energy of one series over one interval, as a raw
/// integer in the series' unit. 32 bytes, little-endian, no padding. A torn last record (crash mid-write)
/// is detected by length and ignored.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct SpoolRecord
{
    public const int Size = 32;

    /// <summary>End of the interval, Unix time in ns (UTC).</summary>
    public long WallNs;
    /// <summary>Interval length on the monotonic clock, ns.</summary>
    public long IntervalNs;
    /// <summary>Energy over the interval, raw units of the series (see <see cref="SpoolSeries.JoulesPerUnit"/>).</summary>
    public long Value;
    /// <summary>Index into <see cref="SpoolMeta.Series"/>.</summary>
    public int Series;
    public SpoolFlags Flags;

    /// <summary>Adds <paramref name="r"/> of the same series into this one: energy and interval summed, the later end,
    /// flags or-ed (a series' records merged while writes fail, a dead sampler's unsplit reads closed).</summary>
    public void Add(in SpoolRecord r)
    {
        Value += r.Value;
        IntervalNs += r.IntervalNs;
        WallNs = Math.Max(WallNs, r.WallNs);
        Flags |= r.Flags;
    }
}

[Flags]
public enum SpoolFlags
{
    None = 0,
    /// <summary>The counter may have wrapped more than once: the value is a lower bound.</summary>
    WrapAmbiguous = 1,
    /// <summary>A read failed during the interval: the value misses part of it.</summary>
    ReadError = 2,
    /// <summary>A reading was impossible (counter reset, or more energy than max_power_w allows) and was rejected:
    /// 0 counted for it, so the value misses that read's interval.</summary>
    Implausible = 4,
    /// <summary>A job's share only: the job's cgroup was gone when the interval's end read it (Slurm removes it when the
    /// job's last step ends, before its epilog's end; or a requeue replaced it): its CPU time since its previous read is
    /// not known, so the share misses it (that energy is in unattributed).</summary>
    CgroupGone = 8,
    /// <summary>A job's share only: the job's cgroup was gone when the interval's end read it, and its CPU time since its
    /// previous read was taken from the scheduler's cgroup above it, which keeps a removed child's CPU time, less the other
    /// registered jobs' below it (README "Attribution"): the share is complete. Never with <see cref="CgroupGone"/>.</summary>
    FromParentCgroup = 16,
}
