namespace Alumet.Hpc.Core;

/// <summary>How a value was obtained. Every report and Parquet file names it: a model estimate is never a measurement.</summary>
public enum MeasurementInterface
{
    /// <summary>RAPL through the powercap sysfs (<c>energy_uj</c>).</summary>
    Powercap,
    /// <summary>RAPL through powercap's MMIO variant (<c>intel-rapl-mmio</c>).</summary>
    PowercapMmio,
    /// <summary>NVML <c>nvmlDeviceGetTotalEnergyConsumption</c> (mJ, Volta and newer).</summary>
    NvmlEnergyCounter,
    /// <summary>NVML instant/average power integrated over time (GPUs without an energy counter).</summary>
    NvmlIntegratedPower,
    /// <summary>CPU time × a configured power model: an estimate, not a measurement.</summary>
    Estimate,
    /// <summary>The BMC's DCMI Get Power Reading (IPMI NetFn 0x2C, group 0xDC, command 0x02), integrated over time.</summary>
    IpmiDcmi,
    /// <summary>A BMC power sensor (unit Watts, IPMI Get Sensor Reading), integrated over time.</summary>
    IpmiSensor,
}

public static class MeasurementInterfaces
{
    public static string Wire(this MeasurementInterface i) => i switch
    {
        MeasurementInterface.Powercap => "powercap",
        MeasurementInterface.PowercapMmio => "powercap-mmio",
        MeasurementInterface.NvmlEnergyCounter => "nvml-energy-counter",
        MeasurementInterface.NvmlIntegratedPower => "nvml-integrated-power",
        MeasurementInterface.Estimate => "estimate",
        MeasurementInterface.IpmiDcmi => "ipmi-dcmi",
        MeasurementInterface.IpmiSensor => "ipmi-sensor",
        _ => throw new ArgumentOutOfRangeException(nameof(i)),
    };

    public static bool IsEstimate(this MeasurementInterface i) => i == MeasurementInterface.Estimate;
}
