using Alumet.Hpc.Core;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Sources.Rapl;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sources.Rapl;

public class MsrSourceTests
{
    private static MsrSource.Result Discover(MsrTree t, string dramUnit = "auto") =>
        MsrSource.Discover(t.DevRoot, CpuTopology.Read(t.CpuRoot), CpuIdentity.Read(t.Cpuinfo), dramUnit);

    private static (ulong[] Raw, bool[] Ok) Read(MsrSource s)
    {
        var raw = new ulong[s.Channels.Count];
        var ok = new bool[s.Channels.Count];
        s.Read(raw, ok, 0);
        return (raw, ok);
    }

    [Fact]
    public void IntelServerUnitsDomainsAndTheFixedDramUnit()
    {
        // Skylake-SP (model 0x55): ESU 14 = 61.035 µJ for package and cores, DRAM fixed at 2^-16 J = 15.26 µJ.
        using var t = MsrTree.Intel(2, esu: 14, model: 0x55);
        t.Set(0, 0x611, 0x1234_5678).Set(4, 0x619, 0xFFFF_FFFF_0000_0007); // high 32 bits are not the counter
        var found = Discover(t);
        using var s = found.Source!;
        Assert.Equal(["cpu_package:0", "cpu_cores:0", "dram:0", "cpu_package:1", "cpu_cores:1", "dram:1"], s.Channels.Select(c => c.Resource.ToString()));
        Assert.All(s.Channels, c => Assert.Equal(MeasurementInterface.Msr, c.Interface));
        Assert.All(s.Channels, c => Assert.Equal(1UL << 32, c.Modulus));
        Assert.Equal(1.0 / 16384, s.Channels[0].JoulesPerUnit);
        Assert.Equal(1.0 / 16384, s.Channels[1].JoulesPerUnit);
        Assert.Equal(1.0 / 65536, s.Channels[2].JoulesPerUnit);
        var (raw, ok) = Read(s);
        Assert.All(ok, Assert.True);
        Assert.Equal([0x1234_5678UL, 1, 1, 1, 1, 7], raw);
        // PP1 and psys read 0 (never counted on a server): absent, and said so.
        Assert.Contains(found.Problems, p => p.Contains("0x641") && p.Contains("uncore:0"));
        Assert.Contains(found.Problems, p => p.Contains("0x64D") && p.Contains("psys:0"));
    }

    [Theory]
    [InlineData(0x55, "auto", 16)]  // Skylake-SP: fixed
    [InlineData(0x3F, "auto", 16)]  // Haswell-EP: fixed
    [InlineData(0x9E, "auto", 14)]  // Kaby Lake client: the ESU
    [InlineData(0x55, "esu", 14)]   // overridden both ways
    [InlineData(0x9E, "fixed", 16)]
    public void DramUnitFollowsTheModelOrTheSetting(int model, string setting, int expectedEsu)
    {
        using var t = MsrTree.Intel(1, esu: 14, model: model);
        using var s = Discover(t, setting).Source!;
        Assert.Equal(Math.ScaleB(1.0, -expectedEsu), s.Channels.Single(c => c.Resource.Kind == ResourceKind.Dram).JoulesPerUnit);
    }

    [Fact]
    public void AmdZenHasPackageAndTheSumOfItsCoresWithAmdUnits()
    {
        using var t = MsrTree.Amd(esu: 16);
        // 2 cores of 2 threads: each core's register is read on its last thread (cpu 1 and 3).
        t.Set(0, 0xC001029B, 0x0000_0000_00AB_CDEF).Set(1, 0xC001029A, 0xFFFF_FFF0).Set(3, 0xC001029A, 0x100);
        var found = Discover(t);
        using var s = found.Source!;
        Assert.Equal(["cpu_package:0", "cpu_cores:0"], s.Channels.Select(c => c.Resource.ToString()));
        Assert.All(s.Channels, c => Assert.Equal(1.0 / 65536, c.JoulesPerUnit));
        Assert.Equal([1, 3], s.Domains[1].Cpus);
        var (raw, _) = Read(s);
        Assert.Equal(0xAB_CDEFUL, raw[0]);
        Assert.Equal((0xFFFF_FFF0UL + 0x100) & 0xFFFF_FFFF, raw[1]); // the sum modulo 2^32

        // Core 0 wraps (+0x20) while core 2 adds 0x100: the sum wraps like one 32-bit counter, and the wrap-safe
        // accumulator recovers exactly 0x120 counts.
        var counter = EnergyCounter.For(s.Channels[1], 1000);
        counter.Read(raw[1], 0);
        t.Set(1, 0xC001029A, 0x10).Set(3, 0xC001029A, 0x200);
        (raw, _) = Read(s);
        Assert.Equal(new CounterStep(0x120, 1_000_000, SpoolFlags.None), counter.Read(raw[1], 1_000_000));
        Assert.DoesNotContain(found.Problems, p => p.Contains("dram")); // AMD has no DRAM register: nothing is probed
    }

    [Fact]
    public void MissingDramRegisterLeavesDramUnmeasuredAndSaysWhy()
    {
        using var t = MsrTree.Intel(1, dram: false);
        var found = Discover(t);
        using var s = found.Source!;
        Assert.Equal(["cpu_package:0", "cpu_cores:0"], s.Channels.Select(c => c.Resource.ToString()));
        Assert.Contains(found.Problems, p => p.Contains("register 0x619 reads 0: dram:0 not measured"));
    }

    [Fact]
    public void PackageWhoseLeadCpuIsOfflineIsReadThroughAnotherOnlineCpu()
    {
        // Package 1's usual lead, cpu 4, is offline: its registers are reached through cpu 5.
        using var t = MsrTree.Intel(2, leadOf: p => p == 1 ? 5 : 0);
        t.Cpu(4, package: 1, core: 0, online: false);
        t.Set(5, 0x611, 777);
        var found = Discover(t);
        using var s = found.Source!;
        Assert.Equal(["cpu_package:0", "cpu_cores:0", "dram:0", "cpu_package:1", "cpu_cores:1", "dram:1"], s.Channels.Select(c => c.Resource.ToString()));
        Assert.Equal([5], s.Domains[3].Cpus);
        Assert.Equal(777UL, Read(s).Raw[3]);
    }

    [Fact]
    public void PackageWithEveryCpuOfflineIsReportedNotGuessed()
    {
        using var t = MsrTree.Intel(2);
        for (int c = 4; c < 8; c++) t.Cpu(c, package: 1, core: (c - 4) / 2, online: false);
        var found = Discover(t);
        using var s = found.Source!;
        Assert.Equal(["cpu_package:0", "cpu_cores:0", "dram:0"], s.Channels.Select(c => c.Resource.ToString()));
        Assert.Contains(found.Problems, p => p.Contains("package 1 has no online CPU"));
    }

    [Fact]
    public void NoMsrDriverUnknownVendorAndUnreadableRegistersAreSentences()
    {
        using var t = MsrTree.Intel(1);
        var noDriver = MsrSource.Discover(t.PathOf("nonexistent"), CpuTopology.Read(t.CpuRoot), CpuIdentity.Read(t.Cpuinfo));
        Assert.Null(noDriver.Source);
        Assert.Contains("modprobe msr", Assert.Single(noDriver.Problems));

        t.Vendor("CentaurHauls", 6, 15);
        var unknown = Discover(t);
        Assert.Null(unknown.Source);
        Assert.Contains("unknown CPU vendor (CentaurHauls", Assert.Single(unknown.Problems));

        // An empty msr file: the unit register cannot be read (a short read, as EIO on a CPU without RAPL).
        using var bare = new MsrTree().Vendor("GenuineIntel", 6, 0x55).Cpu(0, 0, 0);
        var none = Discover(bare);
        Assert.Null(none.Source);
        Assert.Contains(none.Problems, p => p.Contains("register 0x606: unreadable"));
    }

    [Fact]
    public void TopologyListsAndMultiDieIds()
    {
        Assert.True(CpuTopology.TryParseList("0-2,8,10-11\n", out var cpus));
        Assert.Equal([0, 1, 2, 8, 10, 11], cpus);
        Assert.False(CpuTopology.TryParseList("3-1", out _));
        Assert.False(CpuTopology.TryParseList("", out _));

        using var t = new MsrTree().Cpu(0, 0, 0, die: 0).Cpu(1, 0, 1, die: 1).Cpu(2, 1, 0).Cpu(3, 1, 1);
        var units = CpuTopology.Read(t.CpuRoot).Leads(perDie: true, out var skipped);
        Assert.Empty(skipped);
        Assert.Equal(["0-die-0", "0-die-1", "1"], units.Select(u => u.Id)); // as powercap's package-0-die-1
        Assert.Equal(["0", "1"], CpuTopology.Read(t.CpuRoot).Leads(perDie: false, out _).Select(u => u.Id));
    }
}
