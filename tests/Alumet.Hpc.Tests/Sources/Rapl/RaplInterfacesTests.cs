using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Sources.Rapl;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sources.Rapl;

/// <summary>
/// One generated node seen through the three interfaces: powercap files, MSR files and a PMU description (the
/// software PMU behind it: real perf_event_open). Consistent values: the MSR counts u (ESU 14) are
/// energy_uj = floor(u × 10^6 / 2^14) in powercap, as the kernel derives it.
/// </summary>
public sealed class RaplInterfacesTests : IDisposable
{
    private const ulong MaxRange = 262_143_999_938; // floor((2^32 - 1) × 61.03515625 µJ): powercap's range for ESU 14
    private readonly MsrTree _msr = MsrTree.Intel(1, esu: 14, model: 0x9E);
    private readonly PowercapTree _powercap = PowercapTree.Standard(1, MaxRange);
    private readonly PerfPmuTree _perf = new PerfPmuTree(type: 1, cpumask: "0").Event("energy-pkg");

    public void Dispose()
    {
        _msr.Dispose();
        _powercap.Dispose();
        _perf.Dispose();
    }

    private AlumetConfig Config(string iface, bool msr = true, bool perf = true, bool powercap = true)
    {
        var c = new AlumetConfig();
        c.Sources.RaplInterface = iface;
        c.Paths.PowercapRoot = powercap ? _powercap.Root : _powercap.PathOf("absent");
        c.Paths.MsrRoot = msr ? _msr.DevRoot : _msr.PathOf("absent");
        c.Paths.CpuRoot = _msr.CpuRoot;
        c.Paths.Cpuinfo = _msr.Cpuinfo;
        c.Paths.PerfPmuRoot = perf ? _perf.Root : _perf.PathOf("absent");
        return c;
    }

    /// <summary>Moves one package counter on both file interfaces to MSR count <paramref name="units"/>.</summary>
    private void SetPackage(ulong units, ulong? powercapUnits = null)
    {
        _msr.Set(0, 0x611, units & 0xFFFF_FFFF);
        _powercap.SetEnergy("intel-rapl:0", (powercapUnits ?? units) % (1UL << 32) * 1_000_000 / 16384);
    }

    private static MeasurementInterface? Interface(RaplInterfaces.Choice c) => c.Source?.Channels[0].Interface;

    [Fact]
    public void AutoTakesTheCheapestPresentInTheMeasuredOrder()
    {
        Assert.Equal([MeasurementInterface.Perf, MeasurementInterface.Msr, MeasurementInterface.Powercap], RaplInterfaces.AutoOrder);
        using (var c = Disposing(RaplInterfaces.Choose(Config("auto")))) Assert.Equal(MeasurementInterface.Perf, Interface(c.Choice));
        using (var c = Disposing(RaplInterfaces.Choose(Config("auto", perf: false)))) Assert.Equal(MeasurementInterface.Msr, Interface(c.Choice));
        using (var c = Disposing(RaplInterfaces.Choose(Config("auto", perf: false, msr: false))))
        {
            Assert.Equal(MeasurementInterface.Powercap, Interface(c.Choice));
            Assert.Null(c.Choice.CrossCheck); // nothing to compare with
            Assert.Contains(c.Choice.Problems, p => p.StartsWith("perf not used: perf: ") && p.Contains("does not exist"));
            Assert.Contains(c.Choice.Problems, p => p.StartsWith("msr not used: msr: ") && p.Contains("modprobe msr"));
            Assert.Contains(c.Choice.Problems, p => p.StartsWith("RAPL read through powercap (rapl_interface = \"auto\""));
        }
        // Explicit choices win over cost; every interface is named on its channels.
        foreach (var wire in new[] { "perf", "msr", "powercap" })
            using (var c = Disposing(RaplInterfaces.Choose(Config(wire))))
                Assert.All(c.Choice.Source!.Channels, ch => Assert.Equal(wire, ch.Interface.Wire()));
    }

    [Fact]
    public void AutoIgnoresAnInterfaceWithoutAPackageCounter()
    {
        // A VM's power PMU with a lone psys event that never counts must not win over powercap (or the estimate).
        using var psysOnly = new PerfPmuTree(type: 1, cpumask: "0").Event("energy-psys");
        var cfg = Config("auto", msr: false);
        cfg.Paths.PerfPmuRoot = psysOnly.Root;
        using (var c = Disposing(RaplInterfaces.Choose(cfg)))
        {
            Assert.Equal(MeasurementInterface.Powercap, Interface(c.Choice));
            Assert.Equal(["RAPL cross-check: powercap and perf report different domains: only powercap has cpu_cores:0, cpu_package:0, dram:0; only perf has psys:0 (the sampler uses powercap)"],
                c.Choice.CrossCheck!.CompareDomains());
        }
        cfg.Paths.PowercapRoot = _powercap.PathOf("absent");
        var none = RaplInterfaces.Choose(cfg);
        Assert.Null(none.Source);
        Assert.Contains(none.Problems, p => p == "perf: no package counter (psys:0): not used by \"auto\"");
    }

    [Fact]
    public void ExplicitInterfaceThatIsAbsentFailsWithItsReasonWhenRaplIsRequired()
    {
        var cfg = Config("msr", msr: false);
        cfg.Sources.Rapl = "on";
        var e = Assert.Throws<MissingHardwareException>(() => SourceFactory.Create(cfg, null));
        Assert.StartsWith("no RAPL counter (rapl_interface = \"msr\"): msr: ", e.Message);
        Assert.Contains("modprobe msr", e.Message);
    }

    [Fact]
    public void CrossCheckComparesDomainsAndEnergyAndNamesTheDisagreement()
    {
        // MSR lacks DRAM here, powercap has it: a domain-set difference.
        _msr.Set(0, 0x619, 0);
        using var c = Disposing(RaplInterfaces.Choose(Config("msr", perf: false)));
        var check = c.Choice.CrossCheck!;
        Assert.Equal(["RAPL cross-check: msr and powercap report different domains: only powercap has dram:0 (the sampler uses msr)"], check.CompareDomains());

        // Consistent energy over the window: 10 J on both (163840 counts of 2^-14 J; 10 000 000 µJ).
        SetPackage(1_000_000);
        check.Begin(0);
        SetPackage(1_000_000 + 163_840);
        Assert.Equal(["RAPL cross-check over 0.50 s: msr, powercap agree on 2 domain reading(s) within 2 %"], check.Finish(500_000_000));

        // powercap 20 % lower on the package (e.g. a stale or misconfigured counter): named, with both energies.
        SetPackage(2_000_000);
        check.Begin(0);
        SetPackage(2_000_000 + 163_840, powercapUnits: 2_000_000 + 131_072);
        Assert.Equal(["RAPL cross-check over 0.50 s: cpu_package:0 msr 10.000000 J, powercap 8.000000 J (20 % apart, tolerance 2 %); the sampler uses msr"],
            check.Finish(500_000_000));
    }

    /// <summary>
    /// The platform counter (psys, one per node) is one domain whichever interface reads it: psys:0 on each, so its
    /// series (Parquet `domain`) keeps its name when a node's interface changes. powercap named it by its zone's index
    /// (intel-rapl:1 on a one-socket node: psys:1), msr and perf psys:0.
    /// </summary>
    [Fact]
    public void PsysHasOneNameOnEveryInterface()
    {
        _powercap.Zone("intel-rapl:1", "psys", MaxRange);
        _msr.Set(0, 0x64D, 1);
        using var perf = new PerfPmuTree(type: 1, cpumask: "0").Event("energy-pkg").Event("energy-psys");
        foreach (var wire in new[] { "perf", "msr", "powercap" })
        {
            var cfg = Config(wire);
            cfg.Paths.PerfPmuRoot = perf.Root;
            using var c = Disposing(RaplInterfaces.Choose(cfg));
            var psys = c.Choice.Source!.Channels.Where(ch => ch.Resource.Kind == ResourceKind.Psys).Select(ch => ch.Resource.ToString());
            Assert.Equal($"{wire}: psys:0", $"{wire}: {string.Join(", ", psys)}");
        }
        using var check = Disposing(RaplInterfaces.Choose(Config("powercap", perf: false)));
        Assert.Empty(check.Choice.CrossCheck!.CompareDomains());
    }

    [Fact]
    public void CrossCheckAcrossAWrapUsesTheWrapSafeAccumulator()
    {
        using var c = Disposing(RaplInterfaces.Choose(Config("msr", perf: false)));
        var check = c.Choice.CrossCheck!;
        SetPackage(0xFFFF_F000);
        check.Begin(0);
        SetPackage(0x1_0000_1000); // both counters wrapped: 8192 counts = 0.5 J; powercap 0.499939 J (one count lost to its range)
        Assert.Single(check.Finish(100_000_000), m => m.Contains("agree"));
    }

    private sealed record Disposer(RaplInterfaces.Choice Choice) : IDisposable
    {
        public void Dispose()
        {
            Choice.Source?.Dispose();
            Choice.CrossCheck?.Dispose();
        }
    }

    private static Disposer Disposing(RaplInterfaces.Choice c) => new(c);
}
