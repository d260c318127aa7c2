using System.Diagnostics;
using Alumet.Hpc.Core;
using Alumet.Hpc.Sources.Bmc;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Sources.Bmc;

/// <summary>
/// The BMC source against a real BMC simulator (ipmi_sim, tests/e2e/bmc) over IPMI 2.0 LAN on 127.0.0.1, with scripted
/// readings and the faults of real BMCs. Energies are exact: a constant scripted power P integrates to exactly
/// floor(P × covered time) mJ, covered time being what the source reports it integrated.
/// </summary>
public class BmcSourceTests
{
    private static BmcSettings Settings(BmcSimulator sim, string iface = "auto", double hz = 10, int timeoutMs = 400, double staleS = 5) =>
        new(sim.Host, BmcSimulator.User, File.ReadAllText(sim.PasswordFile), iface, "", hz, timeoutMs, staleS, 3,
            FreeIpmiLibrary.PrivilegeAdmin, "/dev/ipmi0"); // ipmi_sim wants admin for group-extension commands (DCMI asks for user)

    private static BmcSource Open(BmcSettings s)
    {
        var src = BmcSource.Open("libfreeipmi.so.17", s, out string error);
        Assert.True(src is not null, error);
        return src!;
    }

    private static (ulong Mj, bool Ok) ReadOnce(BmcSource src)
    {
        Span<ulong> raw = stackalloc ulong[1];
        Span<bool> ok = stackalloc bool[1];
        src.Read(raw, ok, Clock.MonotonicNs());
        return (raw[0], ok[0]);
    }

    /// <summary>floor(P × covered) in mJ: mW × ns = 1e-12 J.</summary>
    private static ulong ExactMj(long milliwatts, long coveredNs) => (ulong)((Int128)milliwatts * coveredNs / 1_000_000_000);

    [Fact]
    public void DcmiReadingOf300WIntegratesExactlyOverTheCoveredTime()
    {
        using var sim = new BmcSimulator("watts 300");
        var sw = Stopwatch.StartNew(); // readings start when the source opens
        using var src = Open(Settings(sim));
        Assert.Equal(MeasurementInterface.IpmiDcmi, src.Interface);
        Assert.Equal("node_wall:bmc", src.Channels[0].Resource.ToString());
        Assert.Equal("ipmi-dcmi", src.Channels[0].Interface.Wire());

        ReadOnce(src);
        Thread.Sleep(2000);
        var (mj, ok) = ReadOnce(src);
        double elapsedS = sw.Elapsed.TotalSeconds;

        Assert.True(ok);
        Assert.Equal(0, src.Failures);
        Assert.Equal(ExactMj(300_000, src.CoveredNs), mj);
        // Covered: from the first to the last reading; at 10 Hz at most ~one period (+ a request) is lost at each end.
        Assert.InRange(src.CoveredNs / 1e9, elapsedS - 0.5, elapsedS);
    }

    [Fact]
    public void WithoutDcmiAutoFallsBackToTheWattsSensor()
    {
        using var sim = new BmcSimulator("dcmi 0", sensorWatts: 250);
        using var src = Open(Settings(sim));
        Assert.Equal(MeasurementInterface.IpmiSensor, src.Interface);
        Assert.Equal("ipmi-sensor", src.Channels[0].Interface.Wire());
        Assert.Contains("Pwr Consumption", src.Perimeter);

        ReadOnce(src);
        Thread.Sleep(1500);
        var (mj, ok) = ReadOnce(src);
        Assert.True(ok);
        Assert.True(src.CoveredNs > 1_000_000_000L, $"covered {src.CoveredNs} ns");
        Assert.Equal(ExactMj(250_000, src.CoveredNs), mj);
    }

    /// <summary>
    /// A sensor whose base unit is Watts but whose SDR gives a rate unit (sensor units 1 bits 5:3, IPMI 2.0 table 43-1:
    /// 101 = per hour) is not a power: it used to be read as Watts (only the modifier bits were checked).
    /// </summary>
    [Fact]
    public void AWattsPerHourSensorIsRefusedInOneSentence()
    {
        using var sim = new BmcSimulator("dcmi 0", sensorWatts: 250, sdrUnits1: 0x28);
        var src = BmcSource.Open("libfreeipmi.so.17", Settings(sim, iface: "sensor"), out string error);
        src?.Dispose();
        Assert.Null(src);
        Assert.Equal($"BMC at {sim.Host} (IPMI 2.0 LAN): no node power: DCMI not tried ([bmc] interface = \"sensor\"); sensor: "
            + "\"Pwr Consumption\" is in Watts per hour (sensor units 1 = 0x28 in its SDR), not Watts: not used, and no other sensor "
            + "has unit Watts in the SDR repository", error);
    }

    [Fact]
    public void DcmiOnlyOnABmcWithoutDcmiIsASentence()
    {
        using var sim = new BmcSimulator("dcmi 0");
        var src = BmcSource.Open("libfreeipmi.so.17", Settings(sim, iface: "dcmi"), out string error);
        Assert.Null(src);
        Assert.Contains("DCMI Get Power Reading failed: completion code 0xC1", error);
        Assert.Contains("set [bmc] interface = \"sensor\"", error);
    }

    [Fact]
    public void StaleReadingsAreFlaggedAndNotCounted()
    {
        // The BMC keeps answering, but its reading's timestamp never advances.
        using var sim = new BmcSimulator("watts 300\ntimestamp 1700000000");
        using var src = Open(Settings(sim, staleS: 1));
        ReadOnce(src);
        Thread.Sleep(600);
        var (beforeStale, ok1) = ReadOnce(src);
        Assert.True(ok1);
        Thread.Sleep(1500); // past stale_after_s: readings are now stale
        var (mj, ok2) = ReadOnce(src);
        Assert.False(ok2);
        Assert.True(src.Failures > 0);
        Thread.Sleep(500);
        var (mjLater, _) = ReadOnce(src);
        Assert.Equal(mj, mjLater);            // nothing counted while stale
        Assert.True(mj >= beforeStale);
        // What was counted is exactly the covered time (< 1 s + one period) at 300 W.
        Assert.Equal(ExactMj(300_000, src.CoveredNs), mjLater);
        Assert.InRange(src.CoveredNs / 1e9, 0.4, 1.2);
    }

    /// <summary>
    /// The simulator's script rewritten while the source polls (calibrate's ladder does it at each step): every DCMI
    /// reading is the scripted power. BmcSimulator.Script truncated the file and then wrote it, so a request between the
    /// two read an empty script and answered 0 W, a good reading of nothing.
    /// </summary>
    [Fact]
    public void AScriptRewrittenWhileTheSourcePollsNeverAnswers0W()
    {
        using var sim = new BmcSimulator("watts 300");
        using var src = Open(Settings(sim, hz: 100));
        var readings = new System.Collections.Concurrent.ConcurrentQueue<uint>();
        src.OnReading = (_, mw) => readings.Enqueue(mw);
        for (var sw = Stopwatch.StartNew(); sw.ElapsedMilliseconds < 2000;) sim.Script("watts 300");
        uint[] seen = [.. readings];
        Assert.True(seen.Length >= 50, $"{seen.Length} readings in 2 s at 100 Hz");
        uint[] wrong = [.. seen.Where(mw => mw != 300_000)];
        Assert.True(wrong.Length == 0, $"{wrong.Length} of {seen.Length} readings were not 300 W: {string.Join(", ", wrong.Distinct())} mW");
        Assert.Equal(0, src.Failures);
    }

    [Fact]
    public void SlowAnswersWithinTheTimeoutAreGoodReadings()
    {
        using var sim = new BmcSimulator("watts 300\ndelay_ms 150");
        using var src = Open(Settings(sim, hz: 2, timeoutMs: 1000));
        ReadOnce(src);
        Thread.Sleep(2000);
        var (mj, ok) = ReadOnce(src);
        Assert.True(ok);
        Assert.Equal(0, src.Failures);
        Assert.Equal(ExactMj(300_000, src.CoveredNs), mj);
        Assert.True(src.CoveredNs > 900_000_000L, $"covered {src.CoveredNs} ns");
    }

    [Fact]
    public void AHungBmcNeverBlocksReadAndItsGapIsFlaggedAndNotCounted()
    {
        using var sim = new BmcSimulator("watts 300");
        using var src = Open(Settings(sim, hz: 10, timeoutMs: 300));
        var whole = Stopwatch.StartNew();
        ReadOnce(src);
        Thread.Sleep(800);
        ReadOnce(src);
        sim.Hang();
        long worstReadNs = 0;
        bool sawFailure = false;
        try
        {
            var until = Stopwatch.StartNew();
            while (until.ElapsedMilliseconds < 2000)
            {
                long t0 = Clock.MonotonicNs();
                var (_, ok) = ReadOnce(src);
                worstReadNs = Math.Max(worstReadNs, Clock.MonotonicNs() - t0);
                sawFailure |= !ok;
                Thread.Sleep(50);
            }
        }
        finally { sim.Resume(); }
        Thread.Sleep(1500); // the session is reopened and readings resume
        var (mj, okAfter) = ReadOnce(src);
        Thread.Sleep(500);
        var (mj2, ok2) = ReadOnce(src);

        Assert.True(sawFailure, "a read during the hang must be flagged");
        Assert.True(worstReadNs < 20_000_000, $"Read() waited {worstReadNs / 1e6:0.0} ms for the BMC");
        Assert.True(ok2, "readings resume after the BMC answers again");
        Assert.True(mj2 > mj);
        // The hang (~2 s) is not counted, and the counter is exact on what is covered: each of the two runs around the
        // break is floored to whole mJ on its own, so the sum may be 1 mJ under floor(P × covered).
        Assert.InRange(ExactMj(300_000, src.CoveredNs) - mj2, 0UL, 1UL);
        // Most of the 2 s hang is not covered, however long the sleeps around it overslept on a loaded machine.
        Assert.InRange(src.CoveredNs / 1e9, 0.8, whole.Elapsed.TotalSeconds - 1.5);
    }
}
