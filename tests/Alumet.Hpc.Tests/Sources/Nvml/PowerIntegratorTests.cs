using Alumet.Hpc.Sources.Nvml;

namespace Alumet.Hpc.Tests.Sources.Nvml;

public class PowerIntegratorTests
{
    [Fact]
    public void FirstSampleOnlyStartsTheCounter()
    {
        var p = new PowerIntegrator();
        Assert.False(p.Primed);
        p.Add(500_000, 123);
        Assert.True(p.Primed);
        Assert.Equal(0UL, p.Millijoules);
    }

    [Fact]
    public void SubMillijouleRemaindersAddUpExactly()
    {
        // 1 mW for 1 ns = 1 pJ; a million such intervals with 1 mW = 1e-3 mJ... use 999 999 intervals of 1 ms at 1 mW:
        // each adds 1e-6 J... = 1 µJ = 0.001 mJ; 999 999 of them = 999.999 mJ -> 999, one more -> 1000.
        var p = new PowerIntegrator();
        long t = 0;
        p.Add(1, t);
        for (int i = 0; i < 999_999; i++) p.Add(1, t += 1_000_000);
        Assert.Equal(999UL, p.Millijoules);
        p.Add(1, t += 1_000_000);
        Assert.Equal(1000UL, p.Millijoules);
    }

    [Fact]
    public void TrapezoidWithAnOddSumKeepsTheHalfPicojoule()
    {
        var p = new PowerIntegrator();
        p.Add(0, 0);
        p.Add(1, 1);              // (0 + 1) / 2 x 1 ns = 0.5 pJ
        p.Add(1, 2_000_000_000);  // + 1 mW x (2e9 - 1) ns = 1.999999999 mJ; total 1.9999999995 mJ
        Assert.Equal(1UL, p.Millijoules);
        p.Add(1, 2_000_000_001);  // + 1 pJ: 2.0000000005 mJ
        Assert.Equal(2UL, p.Millijoules);
    }

    [Fact]
    public void LongGapsAtHighPowerDoNotOverflow()
    {
        var p = new PowerIntegrator();
        p.Add(uint.MaxValue, 0);
        p.Add(uint.MaxValue, 3600L * 1_000_000_000);  // 4 294 967.295 W for 1 h
        Assert.Equal(4_294_967_295UL * 3600, p.Millijoules);
    }

    [Fact]
    public void ASampleAtTheSameOrAnEarlierTimeAddsNothing()
    {
        var p = new PowerIntegrator();
        p.Add(1000, 1_000_000_000);
        p.Add(9_999_999, 1_000_000_000);
        p.Add(9_999_999, 500_000_000);
        p.Add(1000, 2_000_000_000);    // interval start stays (1000 mW, 1 s)
        Assert.Equal(1000UL, p.Millijoules);
    }
}
