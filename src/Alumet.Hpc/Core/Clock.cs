using System.Diagnostics;

namespace Alumet.Hpc.Core;

/// <summary>
/// Monotonic clock for intervals (never jumps with NTP), wall clock for timestamps.
/// On Linux <see cref="Stopwatch"/> is CLOCK_MONOTONIC with a 1 ns tick.
/// </summary>
public static class Clock
{
    private static readonly double NsPerTick = 1e9 / Stopwatch.Frequency;

    public static long MonotonicNs() => (long)(Stopwatch.GetTimestamp() * NsPerTick);

    /// <summary>Unix time in nanoseconds (UTC).</summary>
    public static long WallNs() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;

    public static DateTime FromWallNs(long ns) => DateTime.UnixEpoch.AddTicks(ns / 100);
}
