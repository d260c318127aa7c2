using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Nvml;

/// <summary>How a GPU's energy is obtained.</summary>
public enum GpuEnergyMethod
{
    /// <summary><c>nvmlDeviceGetTotalEnergyConsumption</c>: the board's own 64-bit mJ counter (Volta and newer). Preferred.</summary>
    EnergyCounter,
    /// <summary><c>NVML_FI_DEV_POWER_INSTANT</c> integrated over time (no energy counter on this board).</summary>
    IntegratedInstantPower,
    /// <summary><c>nvmlDeviceGetPowerUsage</c> integrated over time: a 1 s trailing average on Ampere and newer, the last resort.</summary>
    IntegratedAveragePower,
}

/// <summary>One NVIDIA GPU as NVML enumerates it.</summary>
/// <param name="Index">NVML index (PCI bus order unless CUDA_DEVICE_ORDER says otherwise; not renumbered by cgroups).</param>
/// <param name="Uuid">"GPU-xxxxxxxx-..." (stable across reboots and driver reloads).</param>
/// <param name="BusId">Canonical sysfs form, see <see cref="GpuBusId"/>. It is the resource id.</param>
/// <param name="MinorNumber">N of /dev/nvidiaN (what Slurm's gres index and OAR's <c>gpudevice</c> name), -1 when unknown.</param>
/// <param name="MigEnabled">MIG mode is on: energy is still measured for the whole board (NVML has no per-instance energy).</param>
public sealed record GpuDevice(int Index, string Uuid, string BusId, string Name, int MinorNumber, bool MigEnabled, GpuEnergyMethod Method)
{
    public ResourceId Resource => new(ResourceKind.Gpu, BusId);

    public MeasurementInterface Interface => Method == GpuEnergyMethod.EnergyCounter
        ? MeasurementInterface.NvmlEnergyCounter
        : MeasurementInterface.NvmlIntegratedPower;
}
