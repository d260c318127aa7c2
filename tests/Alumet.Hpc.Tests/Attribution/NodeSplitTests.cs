using Alumet.Hpc.Attribution;

namespace Alumet.Hpc.Tests.Attribution;

public class NodeSplitTests
{
    [Fact]
    public void SharesFollowCpuTimeAndTheRestIsUnattributed()
    {
        var shares = new ulong[3];
        ulong rest = NodeSplit.ByCpuTime(1_000_000, [600, 300, 50], nodeBusyNs: 1_000, shares);
        Assert.Equal(new ulong[] { 600_000, 300_000, 50_000 }, shares);
        Assert.Equal(50_000UL, rest);
    }

    [Theory]
    [InlineData(1_000_003UL, 1UL, 1UL, 3UL)]
    [InlineData(7UL, 5UL, 5UL, 9UL)]          // cgroups say more than /proc/stat: never more than E
    [InlineData(123_456_789UL, 0UL, 0UL, 0UL)] // idle node: everything unattributed
    [InlineData(ulong.MaxValue / 2, ulong.MaxValue / 4, 3UL, ulong.MaxValue / 2)]
    public void SharesAlwaysAddUpToTheNodeEnergyExactly(ulong e, ulong job, ulong others, ulong busy)
    {
        var shares = new ulong[2];
        ulong rest = NodeSplit.ByCpuTime(e, [job, others], busy, shares);
        Assert.Equal(e, shares[0] + shares[1] + rest);
        Assert.True(shares[0] <= e && shares[1] <= e);
    }

    [Fact]
    public void SixteenJobsSplitOnePeriodAtOnce()
    {
        var cpu = Enumerable.Range(1, 16).Select(i => (ulong)i * 1_000_000).ToArray(); // 136 ms of CPU in all
        var shares = new ulong[16];
        ulong rest = NodeSplit.ByCpuTime(999_999, cpu, nodeBusyNs: 200_000_000, shares);
        Assert.Equal(Enumerable.Range(1, 16).Select(i => (ulong)(999_999UL * (ulong)i / 200)).ToArray(), shares);
        Assert.Equal(999_999UL, shares.Aggregate(0UL, (a, b) => a + b) + rest);
    }

    /// <summary>README "Attribution": denominator = max(node busy CPU time, Σ jobs' CPU time); each share floored.</summary>
    [Fact]
    public void WhenTheCgroupsSayMoreThanProcStatTheirSumIsTheDenominator()
    {
        var shares = new ulong[2];
        Assert.Equal(1UL, NodeSplit.ByCpuTime(7, [5, 5], nodeBusyNs: 9, shares)); // 7 × 5 / 10 = 3.5 → 3 each
        Assert.Equal(new ulong[] { 3, 3 }, shares);
        Assert.Equal(0UL, NodeSplit.ByCpuTime(1_000, [600, 600], nodeBusyNs: 1_000, shares));
        Assert.Equal(new ulong[] { 500, 500 }, shares);
        Assert.Equal(400UL, NodeSplit.ByCpuTime(1_000, [600, 600], nodeBusyNs: 2_000, shares)); // /proc/stat the larger
        Assert.Equal(new ulong[] { 300, 300 }, shares);
    }
}
