using Alumet.Hpc.Core;

namespace Alumet.Hpc.Tests.Core;

public class EnergyCounterTests
{
    // powercap max_energy_range_uj = 999_999: values 0..999_999, modulus 1_000_000 µJ (1 J).
    private const ulong Modulus = 1_000_000;
    // At most 10 W = 10_000_000 µJ/s: a full extra wrap needs ≥ 100 ms between reads.
    private static EnergyCounter NewCounter() => new(Modulus, 10_000_000);

    [Fact]
    public void FirstReadOnlyPrimes()
    {
        var c = NewCounter();
        Assert.Equal((0UL, false), c.Update(500_000, 1_000_000));
        Assert.Equal(0UL, c.Total);
    }

    [Fact]
    public void PlainDeltasAccumulate()
    {
        var c = NewCounter();
        c.Update(100, 0);
        Assert.Equal((900UL, false), c.Update(1_000, 1_000_000));
        Assert.Equal((4_000UL, false), c.Update(5_000, 1_000_000));
        Assert.Equal(4_900UL, c.Total);
    }

    [Fact]
    public void OneWrapAtMaxEnergyRangeIsRecoveredExactly()
    {
        var c = NewCounter();
        c.Update(999_990, 0);
        // 999_990 -> 999_999 is 9 µJ, the wrap to 0 is 1 µJ more, then 0 -> 15 is 15: 25 µJ.
        Assert.Equal((25UL, false), c.Update(15, 10_000_000));
        Assert.Equal(25UL, c.Total);
        Assert.Equal(0, c.AmbiguousIntervals);
    }

    [Fact]
    public void IntervalLongEnoughForTwoWrapsIsFlaggedAsLowerBound()
    {
        var c = NewCounter();
        c.Update(200_000, 0);
        // 250 ms at up to 10 W could be 2.5 J = 2.5 wraps: the count of wraps is unknowable.
        var (delta, ambiguous) = c.Update(100_000, 250_000_000);
        Assert.True(ambiguous);
        Assert.Equal(900_000UL, delta); // the smallest consistent delta: one wrap
        Assert.Equal(1, c.AmbiguousIntervals);
    }

    [Fact]
    public void ShortIntervalIsNotAmbiguousEvenWithAWrap()
    {
        var c = NewCounter();
        c.Update(999_000, 0);
        var (delta, ambiguous) = c.Update(500, 99_000_000); // 99 ms < 100 ms
        Assert.False(ambiguous);
        Assert.Equal(1_500UL, delta);
    }

    [Fact]
    public void NonWrappingCounterGoingBackwardsIsAResetNotANegativeDelta()
    {
        var c = new EnergyCounter(0, 1e9);
        c.Update(5_000, 0);
        Assert.Equal((0UL, true), c.Update(10, 1_000));
        Assert.Equal((90UL, false), c.Update(100, 1_000));
        Assert.Equal(90UL, c.Total);
    }
}
