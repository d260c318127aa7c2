using Alumet.Hpc.Attribution;

namespace Alumet.Hpc.Tests.Attribution;

public class CpuTimeSplitTests
{
    [Fact]
    public void SharesFollowCpuTimeAndTheRestIsUnattributed()
    {
        var s = CpuTimeSplit.Split(energy: 1_000_000, jobCpuNs: 600, otherJobsCpuNs: 300, nodeBusyNs: 1_000);
        Assert.Equal(new CpuTimeSplit.Shares(600_000, 300_000, 100_000), s);
    }

    [Theory]
    [InlineData(1_000_003UL, 1UL, 1UL, 3UL)]
    [InlineData(7UL, 5UL, 5UL, 9UL)]          // cgroups say more than /proc/stat: never more than E
    [InlineData(123_456_789UL, 0UL, 0UL, 0UL)] // idle node: everything unattributed
    [InlineData(ulong.MaxValue / 2, ulong.MaxValue / 4, 3UL, ulong.MaxValue / 2)]
    public void SharesAlwaysAddUpToTheNodeEnergyExactly(ulong e, ulong job, ulong others, ulong busy)
    {
        var s = CpuTimeSplit.Split(e, job, others, busy);
        Assert.Equal(e, s.Job + s.OtherJobs + s.Unattributed);
        Assert.True(s.Job <= e && s.OtherJobs <= e);
    }

    [Fact]
    public void ExclusiveChargesEverything() =>
        Assert.Equal(new CpuTimeSplit.Shares(42, 0, 0), CpuTimeSplit.Exclusive(42));
}
