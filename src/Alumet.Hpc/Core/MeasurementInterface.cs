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
        MeasurementInterface.Msr => "msr",
        MeasurementInterface.Perf => "perf",
        MeasurementInterface.NvmlEnergyCounter => "nvml-energy-counter",
        MeasurementInterface.NvmlIntegratedPower => "nvml-integrated-power",
        MeasurementInterface.Estimate => "estimate",
        MeasurementInterface.IpmiDcmi => "ipmi-dcmi",
        MeasurementInterface.IpmiSensor => "ipmi-sensor",
        _ => throw new ArgumentOutOfRangeException(nameof(i)),
    };

    public static bool IsEstimate(this MeasurementInterface i) => i == MeasurementInterface.Estimate;

    /// <summary>
    /// Whether the interface named <paramref name="wire"/> is read on a thread of its own (NVML, README "Timing"): a row of
    /// its series holds the energy between two of its own reads and its interval is the time between them, which ends up
    /// to one read interval (1 / nvml_hz) before the row's timestamp. Every other source is read at each period's end, so
    /// its rows' intervals are the periods and tile the job's time.
    /// </summary>
    public static bool ReadOnItsOwnThread(string wire) =>
        wire == MeasurementInterface.NvmlEnergyCounter.Wire() || wire == MeasurementInterface.NvmlIntegratedPower.Wire();

    /// <summary>
    /// Slack of the implausible-delta bound (<see cref="EnergyCounter"/>), ns: a read interval of E may hold up to
    /// max_power_w × (E + slack) of energy. It covers how stale a reading can be — RAPL counters update about every
    /// 1 ms, NVML's energy counter every 20-100 ms (README, "Timing") — and a reader preempted between taking its
    /// timestamp and reading the counter. Small next to what a reset taken for a wrap adds (up to a whole counter
    /// range, tens of kJ), large enough that a loaded node never rejects real energy.
    /// </summary>
    public static long PlausibilitySlackNs(this MeasurementInterface i) => i switch
    {
        MeasurementInterface.NvmlEnergyCounter or MeasurementInterface.NvmlIntegratedPower => 500_000_000,
        MeasurementInterface.Estimate => 0,
        // BMC readings are credited when they arrive: one can close a trapezoid as long as a read period plus the longest
        // request ([bmc] timeout_ms <= 10 s).
        MeasurementInterface.IpmiDcmi or MeasurementInterface.IpmiSensor => 30_000_000_000,
        _ => 100_000_000, // RAPL (powercap, MMIO, MSR, perf_events)
    };
}
