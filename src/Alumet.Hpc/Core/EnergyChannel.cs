namespace Alumet.Hpc.Core;

/// <summary>
/// One hardware energy counter. Raw values are integers in the counter's own unit
/// (<see cref="JoulesPerUnit"/>: 1e-6 for powercap µJ, 1e-3 for NVML mJ); they are converted to joules only at output.
/// </summary>
/// <param name="Modulus">The value at which the counter wraps back to 0; 0 means a 64-bit count
/// (perf, NVML), which wraps at 2^64, or a synthetic one (<see cref="EnergyCounter"/>).</param>
/// <param name="Label">Human name from the hardware (<c>package-0</c>, <c>dram</c>, <c>NVIDIA H100</c>).</param>
public sealed record EnergyChannel(ResourceId Resource, MeasurementInterface Interface, double JoulesPerUnit, ulong Modulus, string Label)
{
    public string UnitName => JoulesPerUnit switch
    {
        1e-6 => "uJ",
        1e-3 => "mJ",
        _ => $"{JoulesPerUnit:R} J",
    };
}
