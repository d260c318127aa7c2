using Alumet.Hpc.Core;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Sources.Bmc;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Calibration;

/// <summary>The load ladder: steps of CPU load, how long each lasts, what is discarded while the node settles.</summary>
/// <param name="CpuPercents">CPU load of each step on every CPU, 0..100 (0 = idle).</param>
/// <param name="SettleS">Discarded at the start of each step: fans, VRMs and the BMC's own averaging catch up.</param>
/// <param name="WindowS">Each steady window gives one point.</param>
public sealed record Ladder(IReadOnlyList<int> CpuPercents, double StepS, double SettleS, double WindowS);

/// <summary>
/// Runs the ladder while reading the BMC and the measured sources, and turns it into points: per window, the measured
/// power (RAPL package + DRAM + NVML GPUs, exact from the counters over the window) and the mean of the BMC readings in
/// it. A window is kept only when steady: at least 2 BMC readings, no failed read of either side, and the BMC readings
/// within max(5 W, 5 %) of each other (a window that straddles a change of load mixes two levels).
/// </summary>
public sealed class CalibrationRun(IReadOnlyList<SourceSlot> measured, BmcSource bmc, Ladder ladder, TextWriter progress)
{
    private const double SampleHz = 10; // measured counters: exact energy at any rate, 10 Hz places window edges to 0.1 s
    private readonly List<(long Ns, double J, bool Ok)> _measured = new();
    private readonly List<(long Ns, double W)> _bmc = new();
    private readonly List<long> _bmcFailures = new();

    public IReadOnlyList<CalibrationPoint> Run(CancellationToken token)
    {
        long failuresSeen = bmc.Failures;
        bmc.OnReading = (ns, mw) => { lock (_bmc) _bmc.Add((ns, mw / 1000.0)); };

        var steps = new List<(string Name, long Start, long End)>();
        double totalJ = 0;
        using var load = new CpuLoad();
        for (int k = 0; k < ladder.CpuPercents.Count && !token.IsCancellationRequested; k++)
        {
            int pct = ladder.CpuPercents[k];
            string name = pct == 0 ? "idle" : $"cpu {pct} %";
            progress.WriteLine($"calibrate: step {k + 1}/{ladder.CpuPercents.Count}: {name} for {ladder.StepS:0.#} s");
            progress.Flush();
            load.Set(pct);
            long start = Clock.MonotonicNs(), end = start + (long)(ladder.StepS * 1e9);
            var ticker = new Ticker(SampleHz);
            do
            {
                long now = Clock.MonotonicNs();
                bool allOk = true;
                for (int s = 0; s < measured.Count; s++)
                {
                    var slot = measured[s];
                    slot.Source.Read(slot.Raw, slot.Ok, now);
                    for (int i = 0; i < slot.Raw.Length; i++)
                    {
                        if (!slot.Ok[i]) { allOk = false; continue; }
                        var step = slot.Counters[i].Read(slot.Raw[i], now); // wrap-safe, implausible deltas rejected
                        if (step.Flags != SpoolFlags.None) allOk = false;
                        if (slot.Source.Channels[i].Resource.Kind.CountsInTotal())
                            totalJ += step.Delta * slot.Source.Channels[i].JoulesPerUnit;
                    }
                }
                _measured.Add((now, totalJ, allOk));
                long f = bmc.Failures;
                if (f != failuresSeen) { lock (_bmcFailures) _bmcFailures.Add(now); failuresSeen = f; }
            } while (Clock.MonotonicNs() < end && ticker.WaitNext(token, out _));
            steps.Add((name, start, Clock.MonotonicNs()));
        }
        load.Set(0);
        bmc.OnReading = null;
        return Points(steps);
    }

    private List<CalibrationPoint> Points(List<(string Name, long Start, long End)> steps)
    {
        var points = new List<CalibrationPoint>();
        (long Ns, double W)[] readings;
        lock (_bmc) readings = _bmc.ToArray();
        long window = (long)(ladder.WindowS * 1e9);
        foreach (var (name, start, end) in steps)
        {
            for (long w0 = start + (long)(ladder.SettleS * 1e9); w0 + window <= end; w0 += window)
            {
                long w1 = w0 + window;
                int a = _measured.FindIndex(m => m.Ns >= w0), b = _measured.FindLastIndex(m => m.Ns <= w1);
                if (a < 0 || b <= a) continue;
                if (_measured.Skip(a + 1).Take(b - a).Any(m => !m.Ok)) continue;
                if (_bmcFailures.Any(t => t >= w0 && t <= w1 + (long)1e9)) continue;
                var inside = readings.Where(r => r.Ns >= w0 && r.Ns <= w1).Select(r => r.W).ToArray();
                if (inside.Length < 2) continue;
                double mean = inside.Average();
                if (inside.Max() - inside.Min() > Math.Max(5, 0.05 * mean)) continue;
                double measuredW = (_measured[b].J - _measured[a].J) / ((_measured[b].Ns - _measured[a].Ns) / 1e9);
                points.Add(new CalibrationPoint(name, measuredW, mean));
            }
        }
        return points;
    }
}

/// <summary>
/// CPU load at a duty cycle on every CPU: one thread per CPU, busy for pct % of each 100 ms and asleep for the rest.
/// </summary>
public sealed class CpuLoad : IDisposable
{
    private volatile int _percent;
    private volatile bool _stop;
    private readonly Thread[] _threads;

    public CpuLoad()
    {
        _threads = new Thread[Environment.ProcessorCount];
        for (int i = 0; i < _threads.Length; i++)
        {
            _threads[i] = new Thread(Burn) { IsBackground = true, Name = $"calibrate-load-{i}" };
            _threads[i].Start();
        }
    }

    public void Set(int percent) => _percent = Math.Clamp(percent, 0, 100);

    private void Burn()
    {
        const long CycleNs = 100_000_000;
        double sink = 1;
        while (!_stop)
        {
            int pct = _percent;
            long t0 = Clock.MonotonicNs(), busyUntil = t0 + CycleNs * pct / 100;
            while (Clock.MonotonicNs() < busyUntil) sink = sink * 1.0000001 + 1e-9;
            long left = t0 + CycleNs - Clock.MonotonicNs();
            if (left > 0) Thread.Sleep(TimeSpan.FromTicks(left / 100));
        }
        GC.KeepAlive(sink);
    }

    public void Dispose()
    {
        _stop = true;
        foreach (var t in _threads) t.Join();
    }
}
