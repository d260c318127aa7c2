using Alumet.Hpc.Core;
using Alumet.Hpc.Sources.Estimate;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sources.Estimate;

public class EstimateSourceTests
{
    [Fact]
    public void EnergyIsCpuTimeTimesTheModel()
    {
        using var proc = new ProcTree();
        proc.SetStat(busyTicks: 250, idleTicks: 150); // 2.5 s busy, 1.5 s idle
        using var source = new EstimateSource(proc.Root, new PowerModel("test", 10, 2));
        Span<ulong> raw = stackalloc ulong[1];
        Span<bool> ok = stackalloc bool[1];
        source.Read(raw, ok, 0);
        Assert.True(ok[0]);
        Assert.Equal(28_000_000UL, raw[0]); // 2.5 s × 10 W + 1.5 s × 2 W = 28 J
        var ch = Assert.Single(source.Channels);
        Assert.Equal(MeasurementInterface.Estimate, ch.Interface);
        Assert.Equal(0UL, ch.Modulus);
    }

    [Fact]
    public void ProcStatParsesEveryBusyField()
    {
        using var proc = new ProcTree();
        File.WriteAllText(proc.PathOf("stat"), "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\n");
        using var stat = new ProcStat(proc.Root);
        Assert.True(stat.TryRead(out ulong busy, out ulong idle));
        Assert.Equal(1UL + 2 + 3 + 6 + 7, busy); // steal (8) is another guest's; guest (9, 10) is already inside user/nice
        Assert.Equal(4UL + 5, idle);
    }

    /// <summary>
    /// On a VM, /proc/stat's steal is time the hypervisor ran another guest on this vCPU: the estimate counted it at busy
    /// power, as if this node's jobs had run then.
    /// </summary>
    [Fact]
    public void StolenTimeIsNotEstimatedAsBusy()
    {
        using var proc = new ProcTree();
        proc.SetStat(busyTicks: 250, idleTicks: 150, stealTicks: 100); // 2.5 s busy, 1.5 s idle, 1 s stolen
        using var source = new EstimateSource(proc.Root, new PowerModel("test", 10, 2));
        Span<ulong> raw = stackalloc ulong[1];
        Span<bool> ok = stackalloc bool[1];
        source.Read(raw, ok, 0);
        Assert.True(ok[0]);
        Assert.Equal(28_000_000UL, raw[0]); // 2.5 s × 10 W + 1.5 s × 2 W = 28 J, the stolen second not at all
    }
}
