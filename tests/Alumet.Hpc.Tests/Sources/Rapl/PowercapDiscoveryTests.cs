using Alumet.Hpc.Core;
using Alumet.Hpc.Sources.Rapl;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sources.Rapl;

public class PowercapDiscoveryTests
{
    [Fact]
    public void FindsPackagesAndSubzonesWithTheirSocket()
    {
        using var tree = PowercapTree.Standard(2, maxRange: 65_532_610_987);
        var result = PowercapDiscovery.Discover(tree.Root);
        Assert.Empty(result.Problems);
        Assert.Equal(
            new[] { "cpu_package:0", "cpu_cores:0", "dram:0", "cpu_package:1", "cpu_cores:1", "dram:1" },
            result.Zones.Select(z => z.Resource.ToString()));
        Assert.All(result.Zones, z => Assert.Equal(65_532_610_987UL, z.MaxEnergyRangeUj));
    }

    [Fact]
    public void PsysUncoreAndMmioDuplicates()
    {
        using var tree = new PowercapTree()
            .Zone("intel-rapl:0", "package-0", 1000)
            .Zone("intel-rapl:0:1", "uncore", 1000)
            .Zone("intel-rapl:1", "psys", 1000)
            .Zone("intel-rapl-mmio:0", "package-0", 1000)   // same counter through MMIO: not counted twice
            .Zone("intel-rapl-mmio:1", "package-1", 1000);  // only reachable through MMIO: kept
        var zones = PowercapDiscovery.Discover(tree.Root).Zones;
        // psys is one platform counter: psys:0, as msr and perf name it, whatever its zone's index.
        Assert.Equal(new[] { "cpu_package:0", "uncore:0", "psys:0", "cpu_package:1" }, zones.Select(z => z.Resource.ToString()));
        Assert.Equal(MeasurementInterface.PowercapMmio, zones[3].Interface);
    }

    [Fact]
    public void MultiDieSubzonesTakeTheirParentsIdAsMsrAndPerfDo()
    {
        // Cascade Lake-AP: one zone per die, named package-P-die-D; the old rule gave the subzones the zone index ("1").
        using var tree = new PowercapTree()
            .Zone("intel-rapl:0", "package-0-die-0", 1000).Zone("intel-rapl:0:0", "dram", 1000)
            .Zone("intel-rapl:1", "package-0-die-1", 1000).Zone("intel-rapl:1:0", "dram", 1000);
        Assert.Equal(["cpu_package:0-die-0", "dram:0-die-0", "cpu_package:0-die-1", "dram:0-die-1"],
            PowercapDiscovery.Discover(tree.Root).Zones.Select(z => z.Resource.ToString()));
    }

    [Fact]
    public void DisabledAndBrokenZonesAreReportedNotUsed()
    {
        using var tree = new PowercapTree()
            .Zone("intel-rapl:0", "package-0", 1000, enabled: false)
            .Zone("intel-rapl:1", "package-1", 0);
        var result = PowercapDiscovery.Discover(tree.Root);
        Assert.Empty(result.Zones);
        Assert.Contains(result.Problems, p => p.Contains("disabled"));
        Assert.Contains(result.Problems, p => p.Contains("max_energy_range_uj"));
    }

    [Fact]
    public void MissingPowercapSaysWhatToDo()
    {
        var result = PowercapDiscovery.Discover("/nonexistent/powercap");
        Assert.Empty(result.Zones);
        Assert.Contains("estimate source", Assert.Single(result.Problems));
    }

    [Fact]
    public void SourceReadsCurrentValuesThroughKeptOpenFiles()
    {
        using var tree = PowercapTree.Standard(1, maxRange: 999);
        using var source = new RaplSource(PowercapDiscovery.Discover(tree.Root).Zones);
        Assert.Equal(1000UL, source.Channels[0].Modulus);
        Span<ulong> raw = stackalloc ulong[3];
        Span<bool> ok = stackalloc bool[3];
        tree.SetEnergy("intel-rapl:0", 123);
        tree.SetEnergy("intel-rapl:0:1", 7);
        source.Read(raw, ok, 0);
        Assert.Equal(new ulong[] { 123, 0, 7 }, raw.ToArray());
        Assert.Equal(new[] { true, true, true }, ok.ToArray());
        tree.SetEnergy("intel-rapl:0", 456);
        source.Read(raw, ok, 0);
        Assert.Equal(456UL, raw[0]);
    }
}
