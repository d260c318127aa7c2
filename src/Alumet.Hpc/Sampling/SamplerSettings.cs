namespace Alumet.Hpc.Sampling;

/// <param name="StoragePeriodMs">0 = store every read (raw); else energy aggregated per period.</param>
/// <param name="MaxPowerW">Per-domain plausibility bound used to flag ambiguous counter wraps.</param>
public sealed record SamplerSettings(int StoragePeriodMs, int AttributionPeriodMs, int FlushIntervalMs, double MaxPowerW)
{
    public bool Raw => StoragePeriodMs == 0;
}
