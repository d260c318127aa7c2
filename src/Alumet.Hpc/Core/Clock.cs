using Alumet.Hpc.Native;

namespace Alumet.Hpc.Core;

/// <summary>
/// Monotonic clock for intervals (never jumps with NTP), wall clock for timestamps: clock_gettime(2) of
/// CLOCK_MONOTONIC, the clock of <see cref="System.Diagnostics.Stopwatch"/> on Linux (1 ns tick), and of CLOCK_REALTIME
/// truncated to <see cref="DateTime"/>'s 100 ns, the stamps <c>DateTime.UtcNow</c> gave. Called directly (glibc's
/// vDSO clock_gettime, no system call) without a GC transition: read twice per 1 kHz tick, where Stopwatch and
/// DateTime.UtcNow each went through the runtime's native shim and a conversion (the wall read: 68 → 36 instructions,
/// callgrind, bench/README.md CPU per tick).
/// </summary>
public static unsafe class Clock
{
    public static long MonotonicNs()
    {
        Libc.Timespec ts;
        Libc.clock_gettime(Libc.CLOCK_MONOTONIC, &ts);
        return ts.Sec * 1_000_000_000 + ts.Nsec;
    }

    /// <summary>Unix time in nanoseconds (UTC), in whole 100 ns.</summary>
    public static long WallNs()
    {
        Libc.Timespec ts;
        Libc.clock_gettime(Libc.CLOCK_REALTIME, &ts);
        return ts.Sec * 1_000_000_000 + ts.Nsec / 100 * 100;
    }

    /// <summary>CLOCK_BOOTTIME in ns: the node's time since boot (suspend included), the same for every process of the
    /// node and never stepped by NTP or an admin: a registration's deadline (<see cref="Jobs.JobRegistration.ApplyByBootNs"/>).</summary>
    public static long BootNs()
    {
        Libc.Timespec ts;
        Libc.clock_gettime(Libc.CLOCK_BOOTTIME, &ts);
        return ts.Sec * 1_000_000_000 + ts.Nsec;
    }

    public static DateTime FromWallNs(long ns) => DateTime.UnixEpoch.AddTicks(ns / 100);
}
