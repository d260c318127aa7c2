using Alumet.Hpc.Attribution;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Uncertainty;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Sources.Rapl;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sources.Rapl;

public class PerfSourceTests
{
    [Fact]
    public void PmuDescriptionGivesTypeCpusEventsAndExactScales()
    {
        using var pmu = new PerfPmuTree(type: 23, cpumask: "0,16")
            .Event("energy-pkg", "event=0x02")
            .Event("energy-ram", "event=0x03", scale: "6.103515625e-05")  // 2^-14 J: any exact scale is kept as written
            .Event("energy-cores", "event=0x01", unit: "Watts")            // not energy: refused
            .Event("energy-gpu", "event=0x04,umask=0x1");                  // not the power PMU's format: refused
        var found = PerfPmu.Read(pmu.Root);
        var p = found.Pmu!;
        Assert.Equal(23, p.Type);
        Assert.Equal([0, 16], p.Cpus);
        Assert.Equal(["energy-pkg", "energy-ram"], p.Events.Select(e => e.Name));
        Assert.Equal([2UL, 3UL], p.Events.Select(e => e.Config));
        Assert.Equal(Math.ScaleB(1.0, -32), p.Events[0].JoulesPerUnit); // 2.3283064365386962890625e-10 parses exactly
        Assert.Equal(Math.ScaleB(1.0, -14), p.Events[1].JoulesPerUnit);
        Assert.Equal([ResourceKind.CpuPackage, ResourceKind.Dram], p.Events.Select(e => e.Kind));
        Assert.Contains(found.Problems, m => m.Contains("energy-cores.unit is 'Watts'"));
        Assert.Contains(found.Problems, m => m.Contains("energy-gpu") && m.Contains("not event=<number>"));
    }

    [Fact]
    public void NoPmuIsASentence()
    {
        using var empty = new TempTree("perf");
        var found = PerfPmu.Read(empty.Root);
        Assert.Null(found.Pmu);
        Assert.Contains("no RAPL PMU", Assert.Single(found.Problems));
    }

    /// <summary>
    /// The real perf_event_open and read on the software PMU (type 1, CPU_CLOCK: ns), described as if it were the
    /// power PMU: descriptors, 64-bit reads, resource ids from the topology and the scale all go through the product's path.
    /// </summary>
    [Fact]
    public void RealSyscallOnTheSoftwarePmuCountsAndScales()
    {
        using var pmu = new PerfPmuTree(type: 1, cpumask: "0,1").Event("energy-pkg", "event=0x0").Event("energy-psys", "event=0x0");
        using var topo = new MsrTree().Cpu(0, package: 0, core: 0).Cpu(1, package: 1, core: 0);
        var opened = PerfSource.Open(PerfPmu.Read(pmu.Root).Pmu!, CpuTopology.Read(topo.CpuRoot), "/proc");
        Assert.Empty(opened.Problems);
        using var s = opened.Source!;
        Assert.Equal(["cpu_package:0", "psys:0", "cpu_package:1"], s.Channels.Select(c => c.Resource.ToString())); // psys once
        Assert.All(s.Channels, c => Assert.Equal(MeasurementInterface.Perf, c.Interface));
        Assert.All(s.Channels, c => Assert.Equal(0UL, c.Modulus)); // 64-bit: the kernel handles the hardware wrap
        Assert.All(s.Channels, c => Assert.Equal(Math.ScaleB(1.0, -32), c.JoulesPerUnit));
        Assert.Equal("power/energy-pkg/ on cpu 1", s.Channels[2].Label);

        var a = new ulong[3]; var b = new ulong[3]; var ok = new bool[3];
        long t0 = Clock.MonotonicNs();
        s.Read(a, ok, 0);
        Assert.All(ok, Assert.True);
        Thread.Sleep(50);
        s.Read(b, ok, 0);
        long elapsed = Clock.MonotonicNs() - t0;
        Assert.All(ok, Assert.True);
        // CPU_CLOCK counts ns of the CPU it is bound to: the delta is the time between the reads, give or take scheduling.
        for (int i = 0; i < 3; i++)
        {
            ulong d = b[i] - a[i];
            Assert.InRange((long)d, 40_000_000L, elapsed + 5_000_000L);
        }
    }

    [Fact]
    public void KernelRefusalsAreOneSentenceWithTheFix()
    {
        using var pmu = new PerfPmuTree(type: 0x7fff_0000, cpumask: "0").Event("energy-pkg", "event=0x2");
        using var topo = new MsrTree().Cpu(0, 0, 0);
        var opened = PerfSource.Open(PerfPmu.Read(pmu.Root).Pmu!, CpuTopology.Read(topo.CpuRoot), "/proc");
        Assert.Null(opened.Source);
        string why = Assert.Single(opened.Problems);
        Assert.Contains("perf_event_open(power/energy-pkg/ type 2147418112 config 0x2, cpu 0)", why);
        Assert.Contains("the kernel does not offer this event", why);
        Assert.DoesNotContain("\n", why);

        // EACCES (a non-root sampler): the paranoid setting, its value and the fix. Root cannot provoke it, so the
        // sentence is built for the errno the kernel gives.
        using var proc = new TempTree("proc");
        proc.Write("sys/kernel/perf_event_paranoid", "2\n");
        var p = PerfPmu.Read(pmu.Root).Pmu!;
        string denied = PerfSource.Refusal(p, p.Events[0], 0, 13, proc.Root);
        Assert.Contains("refused (Permission denied)", denied);
        Assert.Contains("kernel.perf_event_paranoid <= 0 (it is 2); run the sampler as root or set the sysctl", denied);
    }

    // 500 W for one hour in the PMU's unit (2^-32 J): 1.8e6 J = 7_730_941_132_800_000 counts.
    private const ulong Hour = 1_800_000UL << 32;
    private const long HourNs = 3_600_000_000_000;
    private const long Wall0 = 1_767_225_600L * 1_000_000_000; // 2026-01-01T00:00:00Z

    /// <summary>The channels <see cref="PerfSource.Open"/> makes for one package (energy-pkg on cpu 0), over
    /// <paramref name="count"/>'s descriptor instead of the kernel's.</summary>
    private static PerfSource OverCountFile(PerfCountFile count)
    {
        using var pmu = new PerfPmuTree(type: 1, cpumask: "0").Event("energy-pkg", "event=0x0");
        using var topo = new MsrTree().Cpu(0, package: 0, core: 0);
        using var opened = PerfSource.Open(PerfPmu.Read(pmu.Root).Pmu!, CpuTopology.Read(topo.CpuRoot), "/proc").Source!;
        return new PerfSource([count.Fd], [.. opened.Channels]);
    }

    /// <summary>
    /// A perf count starts at 0 when the sampler opens the event and is a u64: at 500 W it passes 2^63 (2^31 J) after
    /// ~50 days and wraps at 2^64 (2^32 J) after ~99, both inside a permanent sampler's life or a year-long
    /// max_lifetime_h. A 1200 h job at 500 W (2.16e9 J, more than 2^63 counts) whose count crosses both: every joule.
    /// </summary>
    [Fact]
    public void AFiftyDayJobKeepsEveryJouleWhileItsPerfCountCrossesTheSignBitAndWrapsAt2To64()
    {
        using var rig = new NodeRig();
        var cfg = rig.Config(maxPowerW: 1000);
        cfg.Sampler.MaxLifetimeH = 8784;
        rig.Proc.SetStat(0, 0);
        rig.SetJobCpu("42", 0);
        using var count = new PerfCountFile();
        ulong c = (1UL << 63) - 3 * Hour; // the sign bit after 3 h, the wrap after 1197 h
        count.Next(c); // the sampler's first read primes the counter
        var slot = new SourceSlot(OverCountFile(count), 1000, ownThread: false, maxPowerW: 1000);
        string parent = rig.Cgroups.PathOf("cpuacct", "slurm", "uid_1000");
        using var node = new NodeSampler(cfg, new SourceSet([slot], "test perimeter", "", []), 0)
        {
            Locators = (_, _) => new DirectoryJobLocator(parent, CgroupVersion.V1),
        };
        var job = NodeRig.Job("42", exclusive: true);
        node.Register(job, recovered: false, 0, Wall0);
        for (long h = 1; h < 1200; h++)
        {
            count.Next(c += Hour);
            node.Snapshot(h * HourNs, Wall0 + h * HourNs);
        }
        count.Next(c += Hour);
        var outcome = node.End(job.Key, complete: true, "", 1200 * HourNs, Wall0 + 1200 * HourNs)!;

        Assert.Equal(1197 * Hour - (1UL << 63), c); // the count wrapped: 2^63 + 1197 h of counts, modulo 2^64
        Assert.Equal(("complete", ""), (outcome.Status, outcome.Reason));
        Assert.Equal(2_160_000_000.0, outcome.Record!.Energy.PackageJ); // 1200 × 1.8e6 J, exact
        Assert.Equal(2_160_000_000.0, outcome.Record.NodeEnergyJ);
        Assert.Equal(500.0, outcome.Record.MaxPowerW);
        Assert.Equal(UncertaintyModel.Default.For("perf").SystematicRel * 2_160_000_000.0, outcome.Record.Uncertainty.InterfacesJ);
        node.Close(1200 * HourNs, Wall0 + 1200 * HourNs);
    }

    /// <summary>
    /// The 2^64 wrap is taken only when the bound allows it: around both boundaries a count going backwards or jumping
    /// by more than 1000 W × (elapsed + 100 ms) is still a reset, rejected (0 counted), flagged, and the count re-based.
    /// </summary>
    [Fact]
    public void AroundTheSignBitAndThe2To64WrapImpossibleJumpsAreStillRejectedAndFlagged()
    {
        const ulong J = 1UL << 32;         // one joule in counts
        const ulong Top = ulong.MaxValue - 100 * J + 1; // 100 J before the wrap
        const long S = 1_000_000_000;
        using var count = new PerfCountFile();
        var slot = new SourceSlot(OverCountFile(count), 1000, ownThread: false, maxPowerW: 1000);
        var buffer = new MeasurementBuffer([slot], 0);
        var delta = new ulong[1];
        var flags = new SpoolFlags[1];
        var intervals = new long[1];
        (ulong Delta, SpoolFlags Flags) PeriodEndingAt(ulong next, long ns)
        {
            count.Next(next);
            long mono = ns, wall = Wall0 + ns;
            Assert.Equal(S, buffer.TakeSnapshot(ref mono, ref wall, delta, flags, intervals));
            return (delta[0], flags[0]);
        }

        count.Next((1UL << 63) - 500 * J);
        buffer.Prime(slot, 0);
        Assert.Equal((800 * J, SpoolFlags.None), PeriodEndingAt((1UL << 63) + 300 * J, 1 * S));   // across the sign bit
        Assert.Equal((0UL, SpoolFlags.Implausible), PeriodEndingAt((1UL << 63) + 299 * J, 2 * S)); // 1 J backwards
        Assert.Equal((500 * J, SpoolFlags.None), PeriodEndingAt((1UL << 63) + 799 * J, 3 * S));   // re-based there
        Assert.Equal((0UL, SpoolFlags.Implausible), PeriodEndingAt(Top, 4 * S));                  // +2^63 - 899 J in 1 s
        Assert.Equal((600 * J, SpoolFlags.None), PeriodEndingAt(500 * J, 5 * S));                  // across 2^64: 100 + 500 J
        Assert.Equal((0UL, SpoolFlags.Implausible), PeriodEndingAt(Top, 6 * S));                   // back over 2^64: 2^64 - 600 J
        Assert.Equal((0UL, SpoolFlags.Implausible), PeriodEndingAt(1UL << 63, 7 * S));             // 2^63 + 100 J ahead
        Assert.Equal((0UL, SpoolFlags.Implausible), PeriodEndingAt(7, 8 * S));                     // a reset to 7 counts
        Assert.Equal((1_100 * J - 7, SpoolFlags.None), PeriodEndingAt(1_100 * J, 9 * S));          // 1000 W × 1.1 s: the bound itself
        Assert.Equal(3_000 * J - 7, slot.Counters[0].Total);
        Assert.Equal(5, slot.Counters[0].ImplausibleIntervals);
    }
}
