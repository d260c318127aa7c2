namespace Alumet.Hpc.Sources.Estimate;

/// <summary>
/// Linear per-CPU power model: a busy logical CPU draws <see cref="CoreActiveW"/>, an idle one <see cref="CoreIdleW"/>.
/// Crude by design and named in every output, so nobody mistakes it for a measurement.
/// </summary>
public sealed record PowerModel(string Name, double CoreActiveW, double CoreIdleW)
{
    public string Describe() => $"{Name} (busy CPU {CoreActiveW:0.###} W, idle CPU {CoreIdleW:0.###} W, x CPU time from /proc/stat)";

    /// <summary>Cumulative energy in µJ for cumulative busy/idle ticks; monotonic in both.</summary>
    public ulong EnergyMicrojoules(ulong busyTicks, ulong idleTicks)
    {
        const double UjPerWattTick = 1e6 / ProcStat.UserHz;
        return (ulong)Math.Round((busyTicks * CoreActiveW + idleTicks * CoreIdleW) * UjPerWattTick);
    }
}
