using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Rapl;

/// <summary>A powercap zone that exposes a RAPL energy counter.</summary>
/// <param name="Directory">The zone directory (<c>.../intel-rapl:0:1</c>).</param>
/// <param name="Name">The zone's <c>name</c> file (<c>package-0</c>, <c>core</c>, <c>dram</c>, <c>psys</c>).</param>
/// <param name="MaxEnergyRangeUj">From <c>max_energy_range_uj</c>: the counter wraps to 0 after this value.</param>
public sealed record RaplZone(string Directory, string Name, ResourceId Resource, MeasurementInterface Interface, ulong MaxEnergyRangeUj)
{
    public string EnergyFile => System.IO.Path.Combine(Directory, "energy_uj");
}
