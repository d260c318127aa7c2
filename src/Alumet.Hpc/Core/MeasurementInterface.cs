namespace Alumet.Hpc.Core;

/// <summary>How a value was obtained. Every report and Parquet file names it: a model estimate is never a measurement.</summary>
public enum MeasurementInterface
{
    /// <summary>RAPL through the powercap sysfs (<c>energy_uj</c>).</summary>
    Powercap,
    /// <summary>RAPL through powercap's MMIO variant (<c>intel-rapl-mmio</c>).</summary>
    PowercapMmio,
    /// <summary>RAPL registers read through the <c>msr</c> driver (<c>/dev/cpu/N/msr</c>), 32-bit counters.</summary>
    Msr,
    /// <summary>RAPL through perf_events' <c>power</c> PMU (64-bit counts, the kernel handles the 32-bit wrap).</summary>
    Perf,
    /// <summary>NVML <c>nvmlDeviceGetTotalEnergyConsumption</c> (mJ, Volta and newer).</summary>
    NvmlEnergyCounter,
    /// <summary>NVML instant/average power integrated over time (GPUs without an energy counter).</summary>
    NvmlIntegratedPower,
    /// <summary>CPU time × a configured power model: an estimate, not a measurement.</summary>
    Estimate,
}

public static class MeasurementInterfaces
{
    public static string Wire(this MeasurementInterface i) => i switch
    {
        MeasurementInterface.Powercap => "powercap",
        MeasurementInterface.PowercapMmio => "powercap-mmio",
        MeasurementInterface.Msr => "msr",
        MeasurementInterface.Perf => "perf",
        MeasurementInterface.NvmlEnergyCounter => "nvml-energy-counter",
        MeasurementInterface.NvmlIntegratedPower => "nvml-integrated-power",
        MeasurementInterface.Estimate => "estimate",
        _ => throw new ArgumentOutOfRangeException(nameof(i)),
    };

    public static bool IsEstimate(this MeasurementInterface i) => i == MeasurementInterface.Estimate;
}
