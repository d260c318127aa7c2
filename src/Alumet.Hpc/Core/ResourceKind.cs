namespace Alumet.Hpc.Core;

/// <summary>What piece of hardware a measurement covers (its perimeter).</summary>
public enum ResourceKind
{
    /// <summary>RAPL package domain: cores + uncore (LLC, memory controller) of one socket.</summary>
    CpuPackage,
    /// <summary>RAPL PP0: the cores of one socket (a subset of the package).</summary>
    CpuCores,
    /// <summary>RAPL PP1: uncore/integrated GPU (a subset of the package).</summary>
    Uncore,
    /// <summary>RAPL DRAM domain (absent on AMD Zen).</summary>
    Dram,
    /// <summary>RAPL psys/platform: the whole SoC, a superset of package + DRAM on the platforms that have it.</summary>
    Psys,
    /// <summary>One NVIDIA GPU board.</summary>
    Gpu,
    /// <summary>The whole node at the wall (the BMC's reading of its input power): contains every other domain, never added to them.</summary>
    NodeWall,
}

public static class ResourceKinds
{
    public static string Wire(this ResourceKind k) => k switch
    {
        ResourceKind.CpuPackage => "cpu_package",
        ResourceKind.CpuCores => "cpu_cores",
        ResourceKind.Uncore => "uncore",
        ResourceKind.Dram => "dram",
        ResourceKind.Psys => "psys",
        ResourceKind.Gpu => "gpu",
        ResourceKind.NodeWall => "node_wall",
        _ => throw new ArgumentOutOfRangeException(nameof(k)),
    };

    public static ResourceKind Parse(string wire) => wire switch
    {
        "cpu_package" => ResourceKind.CpuPackage,
        "cpu_cores" => ResourceKind.CpuCores,
        "uncore" => ResourceKind.Uncore,
        "dram" => ResourceKind.Dram,
        "psys" => ResourceKind.Psys,
        "gpu" => ResourceKind.Gpu,
        "node_wall" => ResourceKind.NodeWall,
        _ => throw new FormatException($"unknown resource kind '{wire}'"),
    };

    /// <summary>
    /// Whether this domain is added into TotalEnergy. Cores and uncore are inside the package, psys
    /// contains package + DRAM and node_wall (BMC) contains everything, so adding them would count the same joules twice.
    /// </summary>
    public static bool CountsInTotal(this ResourceKind k) =>
        k is ResourceKind.CpuPackage or ResourceKind.Dram or ResourceKind.Gpu;
}
