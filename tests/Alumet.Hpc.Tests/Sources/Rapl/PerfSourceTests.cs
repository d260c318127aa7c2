using Alumet.Hpc.Core;
using Alumet.Hpc.Sources.Rapl;
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
}
