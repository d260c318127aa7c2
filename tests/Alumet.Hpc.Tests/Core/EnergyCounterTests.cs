using Alumet.Hpc.Core;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Tests.Core;

public class EnergyCounterTests
{
    // powercap max_energy_range_uj = 999_999: values 0..999_999, modulus 1_000_000 µJ (1 J).
    private const ulong Modulus = 1_000_000;
    private const long Ms = 1_000_000;
    // At most 10 W = 10_000_000 µJ/s = 10_000 µJ/ms: a full extra wrap needs ≥ 100 ms between reads.
    private static EnergyCounter NewCounter() => new(Modulus, 10_000_000);

    private static CounterStep Ok(ulong delta, long elapsedNs) => new(delta, elapsedNs, SpoolFlags.None);

    [Fact]
    public void FirstReadOnlyPrimes()
    {
        var c = NewCounter();
        Assert.Equal(Ok(0, 0), c.Read(500_000, 7 * Ms));
        Assert.Equal(0UL, c.Total);
    }

    [Fact]
    public void PlainDeltasAccumulateWithTheCountersOwnElapsedTime()
    {
        var c = NewCounter();
        c.Read(100, 0);
        Assert.Equal(Ok(900, Ms), c.Read(1_000, Ms));
        Assert.Equal(Ok(4_000, 3 * Ms), c.Read(5_000, 4 * Ms));
        Assert.Equal(4_900UL, c.Total);
    }

    [Fact]
    public void OneWrapAtMaxEnergyRangeIsRecoveredExactly()
    {
        var c = NewCounter();
        c.Read(999_990, 0);
        // 999_990 -> 999_999 is 9 µJ, the wrap to 0 is 1 µJ more, then 0 -> 15 is 15: 25 µJ.
        Assert.Equal(Ok(25, 10 * Ms), c.Read(15, 10 * Ms));
        Assert.Equal(25UL, c.Total);
        Assert.Equal(0, c.AmbiguousIntervals);
        Assert.Equal(0, c.ImplausibleIntervals);
    }

    [Fact]
    public void AWrapAtFullPowerIsStillPlausible()
    {
        var c = NewCounter();
        c.Read(995_000, 0);
        // 10 ms at exactly 10 W = 100_000 µJ across the wrap: the bound, not above it.
        Assert.Equal(Ok(100_000, 10 * Ms), c.Read(95_000, 10 * Ms));
    }

    [Fact]
    public void IntervalLongEnoughForTwoWrapsIsFlaggedAsLowerBound()
    {
        var c = NewCounter();
        c.Read(200_000, 0);
        // 250 ms at up to 10 W could be 2.5 J = 2.5 wraps: the count of wraps is unknowable.
        var step = c.Read(100_000, 250 * Ms);
        Assert.Equal(new CounterStep(900_000, 250 * Ms, SpoolFlags.WrapAmbiguous), step); // the smallest consistent delta: one wrap
        Assert.Equal(1, c.AmbiguousIntervals);
        Assert.Equal(0, c.ImplausibleIntervals);
    }

    [Fact]
    public void ShortIntervalIsNotAmbiguousEvenWithAWrap()
    {
        var c = NewCounter();
        c.Read(999_000, 0);
        Assert.Equal(Ok(1_500, 99 * Ms), c.Read(500, 99 * Ms)); // 99 ms < 100 ms
    }

    [Fact]
    public void AResetOneMillisecondAfterAReadIsRejectedNotTakenForAWrap()
    {
        // The defect: 1 ms after a read at 600_000 µJ the counter restarts at 2_000 (driver reload). Taken as a wrap it
        // added 402_000 µJ, 40x what 10 W can give in 1 ms.
        var c = NewCounter();
        c.Read(100_000, 0);
        Assert.Equal(Ok(500_000, 100 * Ms - 1), c.Read(600_000, 100 * Ms - 1));
        Assert.Equal(new CounterStep(0, Ms, SpoolFlags.Implausible), c.Read(2_000, 100 * Ms - 1 + Ms));
        // Re-based on the new value: the next delta counts from 2_000.
        Assert.Equal(Ok(7_000, Ms), c.Read(9_000, 100 * Ms - 1 + 2 * Ms));
        Assert.Equal(507_000UL, c.Total);
        Assert.Equal(1, c.ImplausibleIntervals);
        Assert.Equal(0, c.AmbiguousIntervals);
    }

    [Fact]
    public void AJumpUpAboveMaxPowerIsRejected()
    {
        // Bound with a 2 ms slack: 10 W × (1 ms + 2 ms) = 30_000 µJ.
        var c = new EnergyCounter(Modulus, 10_000_000, slackNs: 2 * Ms);
        c.Read(0, 0);
        Assert.Equal(Ok(30_000, Ms), c.Read(30_000, Ms));
        Assert.Equal(new CounterStep(0, Ms, SpoolFlags.Implausible), c.Read(60_001, 2 * Ms));
        Assert.Equal(30_000UL, c.Total);
    }

    [Fact]
    public void AValueAboveTheCountersRangeIsRejected()
    {
        var c = NewCounter();
        c.Read(10, 0);
        Assert.Equal(new CounterStep(0, Ms, SpoolFlags.Implausible), c.Read(Modulus, Ms));
        Assert.Equal(0UL, c.Total);
    }

    [Fact]
    public void NonWrappingCounterGoingBackwardsIsAResetNotANegativeDelta()
    {
        var c = new EnergyCounter(0, 1e9);
        c.Read(5_000, 0);
        Assert.Equal(new CounterStep(0, 1_000, SpoolFlags.Implausible), c.Read(10, 1_000));
        Assert.Equal(Ok(90, 1_000), c.Read(100, 2_000));
        Assert.Equal(90UL, c.Total);
    }

    [Fact]
    public void TheEstimateModelIsNotBounded()
    {
        var ch = new EnergyChannel(new ResourceId(ResourceKind.CpuPackage, "all"), MeasurementInterface.Estimate, 1e-6, 0, "model");
        var c = EnergyCounter.For(ch, maxPowerW: 1);
        c.Read(0, 0);
        Assert.Equal(Ok(5_000_000, Ms), c.Read(5_000_000, Ms)); // 5 kW for a model of many cores is not a reset
    }

    [Fact]
    public void ChannelsGetTheirInterfacesSlack()
    {
        // NVML: 1000 W for 50 ms + 500 ms slack = 550 J = 550_000 mJ; one mJ more is impossible.
        var gpu = new EnergyChannel(new ResourceId(ResourceKind.Gpu, "0000:3b:00.0"), MeasurementInterface.NvmlEnergyCounter, 1e-3, 0, "H100");
        var c = EnergyCounter.For(gpu, 1000);
        c.Read(1_000, 0);
        Assert.Equal(Ok(550_000, 50 * Ms), c.Read(551_000, 50 * Ms));
        Assert.True(c.Read(1_101_001, 100 * Ms).Implausible);
        // RAPL: 1000 W for 1 ms + 100 ms slack = 101 J.
        var pkg = new EnergyChannel(new ResourceId(ResourceKind.CpuPackage, "0"), MeasurementInterface.Powercap, 1e-6, Modulus * 1_000_000, "package-0");
        var p = EnergyCounter.For(pkg, 1000);
        p.Read(0, 0);
        Assert.Equal(Ok(101_000_000, Ms), p.Read(101_000_000, Ms));
        Assert.True(p.Read(202_000_001, 2 * Ms).Implausible);
    }

    /// <summary>
    /// <see cref="EnergyCounter.Read"/>'s integer case (the tick's: precomputed thresholds, no double) against the rule as
    /// it is written with doubles (the reference below, the code before the integer case), at and around each threshold:
    /// the elapsed time at which a second wrap fits, and the bound at elapsed 0, for RAPL's ranges and units and odd rates.
    /// </summary>
    [Fact]
    public void TheIntegerCaseAnswersAsTheDoubleRuleAroundEveryThreshold()
    {
        var rng = new Random(8);
        (ulong Modulus, double UnitsPerSecond, long SlackNs)[] counters =
        [
            (Modulus, 10_000_000, 0), (Modulus, 10_000_000, 100 * Ms), (Modulus, 3e7 / 7, 100 * Ms),
            (262_143_328_851, 1000 / 1e-6, 100 * Ms), (4_294_967_296, 500 / 6.103515625e-05, 100 * Ms),
            (0, 1000 * 4294967296.0, 100 * Ms), (0, 1e9 / 3, 7), (Modulus, 1e-3, 100 * Ms),
        ];
        int checkedCount = 0;
        foreach (var (modulus, unitsPerSecond, slackNs) in counters)
        {
            double perNs = unitsPerSecond / 1e9;
            double range = modulus != 0 ? modulus : 18446744073709551616.0;
            long ambiguousAt = (long)Math.Min(Math.Ceiling(range / perNs), long.MaxValue / 4);
            var elapsedCases = new List<long> { 0, 1, Ms, 37 * Ms, -1, -Ms };
            for (long d = -2; d <= 2; d++) elapsedCases.Add(ambiguousAt + d);
            foreach (long elapsed in elapsedCases)
            {
                double bound = perNs * (Math.Max(elapsed, 0) + slackNs);
                ulong b0 = (ulong)Math.Min(perNs * slackNs, 1e19), b = (ulong)Math.Min(bound, 1e19);
                foreach (ulong delta in new[] { 0UL, 1UL, b0 - 1, b0, b0 + 1, b - 1, b, b + 1, (ulong)rng.NextInt64() })
                    foreach (bool wrap in new[] { false, true })
                    {
                        ulong last = modulus != 0 ? (ulong)rng.NextInt64((long)modulus) : (ulong)rng.NextInt64() * 2;
                        if (wrap) last = modulus != 0 ? modulus - 1 - Math.Min(last, modulus - 1) % 1000 : ulong.MaxValue - last % 1000;
                        ulong raw = modulus != 0 ? (ulong)((last + (UInt128)delta) % modulus) : last + delta;
                        var c = new EnergyCounter(modulus, unitsPerSecond, slackNs);
                        c.Read(last, 5_000 * Ms);
                        var step = c.Read(raw, 5_000 * Ms + elapsed);
                        var expected = Reference(modulus, unitsPerSecond, slackNs, last, raw, elapsed);
                        Assert.True(expected == (step, c.Total), $"modulus {modulus}, {unitsPerSecond}/s, slack {slackNs}: {last} -> {raw} in {elapsed} ns: {step} total {c.Total}, expected {expected}");
                        checkedCount++;
                    }
            }
        }
        Assert.Equal(8 * 11 * 9 * 2, checkedCount);
    }

    /// <summary>EnergyCounter.Read's rule for a primed counter as written with doubles (before its integer case).</summary>
    private static (CounterStep, ulong Total) Reference(ulong modulus, double unitsPerSecond, long slackNs, ulong last, ulong raw, long elapsed)
    {
        double perNs = unitsPerSecond / 1e9;
        double range = modulus != 0 ? modulus : double.IsFinite(perNs) ? 18446744073709551616.0 : double.PositiveInfinity;
        bool wrapped = raw < last;
        if (modulus != 0 && raw >= modulus || wrapped && double.IsPositiveInfinity(range))
            return (new CounterStep(0, elapsed, SpoolFlags.Implausible), 0);
        ulong delta = wrapped && modulus != 0 ? raw + (modulus - last) : raw - last;
        double bound = perNs * (Math.Max(elapsed, 0) + slackNs);
        if (double.IsFinite(range) && perNs * elapsed >= range) return (new CounterStep(delta, elapsed, SpoolFlags.WrapAmbiguous), delta);
        if (delta > bound) return (new CounterStep(0, elapsed, SpoolFlags.Implausible), 0);
        return (Ok(delta, elapsed), delta);
    }
}
