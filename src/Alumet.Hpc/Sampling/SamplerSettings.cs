namespace Alumet.Hpc.Sampling;

/// <param name="StoragePeriodMs">0 = store every read (raw); else energy aggregated per period.</param>
/// <param name="MaxPowerW">Per-domain plausibility bound used to flag ambiguous counter wraps.</param>
/// <param name="FifoTick">Run the tick thread under SCHED_FIFO priority 1 when allowed (root).</param>
public sealed record SamplerSettings(int StoragePeriodMs, int AttributionPeriodMs, int FlushIntervalMs, double MaxPowerW, bool FifoTick = false)
{
    public bool Raw => StoragePeriodMs == 0;
}
