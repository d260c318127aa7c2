using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Core;

/// <summary>What one read of a counter added: raw units, the time since the counter's previous read, and its flags.</summary>
/// <param name="ElapsedNs">Monotonic time since this counter's previous successful read (per counter: a run of failed
/// reads on one channel lengthens its own interval, never another's); 0 on the first read.</param>
/// <param name="Flags"><see cref="SpoolFlags.WrapAmbiguous"/> (lower bound) or <see cref="SpoolFlags.Implausible"/> (rejected, 0 counted).</param>
public readonly record struct CounterStep(ulong Delta, long ElapsedNs, SpoolFlags Flags)
{
    public bool Ambiguous => (Flags & SpoolFlags.WrapAmbiguous) != 0;
    public bool Implausible => (Flags & SpoolFlags.Implausible) != 0;
}

/// <summary>
/// Wrap-safe accumulator for one raw energy counter. Keeps integers only.
/// powercap's <c>energy_uj</c> runs from 0 to <c>max_energy_range_uj</c> inclusive and then restarts at 0, so the
/// modulus is <c>max_energy_range_uj + 1</c>; the underlying RAPL MSR is 32-bit and wraps every ~130-330 s at
/// 200-500 W (README, "Wraparound"). A modulus of 0 is a 64-bit count, which wraps at 2^64: a perf RAPL count
/// (2^-32 J) does after 2^32 J since the event was opened, ~99 days at 500 W.
/// - A single wrap between two reads is recovered exactly.
/// - When the elapsed time is long enough that, at the configured maximum power, the counter could have wrapped more
///   than once, the number of wraps is unknowable: the interval is counted with the smallest consistent delta (a lower
///   bound) and flagged <see cref="SpoolFlags.WrapAmbiguous"/>, never silently.
/// - A delta no domain can produce — above <c>max_power_w × (elapsed + slack)</c>, the slack covering how stale a
///   reading can be (<see cref="MeasurementInterfaces.PlausibilitySlackNs"/>) — is a reset (driver reload, a counter going backwards that a wrong
///   <c>max_energy_range_uj</c> would take for a wrap) or a corrupt read: it is rejected (0 counted), the counter is
///   re-based on the new value, and the interval is flagged <see cref="SpoolFlags.Implausible"/>.
/// </summary>
public struct EnergyCounter
{
    private readonly ulong _modulus;
    /// <summary>The range as a double: the modulus, 2^64 for a bounded 64-bit count, infinite for an unbounded model.</summary>
    private readonly double _range;
    private readonly double _maxUnitsPerNs;
    private readonly long _slackNs;
    private ulong _last;
    private long _lastNs;
    private bool _primed;

    /// <summary>Accumulated raw units since the first read.</summary>
    public ulong Total;
    /// <summary>Intervals whose delta is only a lower bound (possible extra wraps).</summary>
    public int AmbiguousIntervals;
    /// <summary>Intervals whose delta was rejected as impossible (reset, or more than the maximum power allows).</summary>
    public int ImplausibleIntervals;

    /// <param name="modulus">Counter range (0 = a 64-bit count: 2^64).</param>
    /// <param name="maxUnitsPerSecond">Plausibility bound: the most raw units per second this domain can produce
    /// (<see cref="double.PositiveInfinity"/>: no bound, for a model that cannot reset).</param>
    /// <param name="slackNs">Time added to each interval for the plausibility bound (<see cref="MeasurementInterfaces.PlausibilitySlackNs"/>).</param>
    public EnergyCounter(ulong modulus, double maxUnitsPerSecond, long slackNs = 0)
    {
        _modulus = modulus;
        _maxUnitsPerNs = maxUnitsPerSecond / 1e9;
        // An unbounded model (the estimate) has no wrap: going backwards is a reset there, never 2^64 units.
        _range = modulus != 0 ? modulus : double.IsFinite(_maxUnitsPerNs) ? 18446744073709551616.0 : double.PositiveInfinity;
        _slackNs = slackNs;
    }

    /// <summary>The counter of <paramref name="channel"/>, bounded by <paramref name="maxPowerW"/> with its interface's slack.</summary>
    public static EnergyCounter For(EnergyChannel channel, double maxPowerW) =>
        channel.Interface.IsEstimate()
            ? new EnergyCounter(channel.Modulus, double.PositiveInfinity) // a model: nothing to reset, its power is what it computes
            : new EnergyCounter(channel.Modulus, maxPowerW / channel.JoulesPerUnit, channel.Interface.PlausibilitySlackNs());

    public readonly bool Primed => _primed;

    /// <summary>Feeds a new raw reading taken at <paramref name="monotonicNs"/> (CLOCK_MONOTONIC).</summary>
    public CounterStep Read(ulong raw, long monotonicNs)
    {
        if (!_primed)
        {
            _primed = true;
            _last = raw;
            _lastNs = monotonicNs;
            return new CounterStep(0, 0, SpoolFlags.None);
        }

        long elapsed = monotonicNs - _lastNs;
        _lastNs = monotonicNs;
        ulong last = _last;
        _last = raw; // accepted or rejected, the next delta starts from here

        bool wrapped = raw < last;
        if (_modulus != 0 && raw >= _modulus || wrapped && double.IsPositiveInfinity(_range))
            return Reject(elapsed); // above the counter's range, or an unbounded model going backwards: a reset

        // 64-bit (modulus 0): the unsigned difference is the delta modulo 2^64, the wrap included; a reset gives a
        // delta near 2^64 that the bound below rejects.
        ulong delta = wrapped && _modulus != 0 ? raw + (_modulus - last) : raw - last;
        double bound = _maxUnitsPerNs * (Math.Max(elapsed, 0) + _slackNs);
        if (double.IsFinite(_range) && _maxUnitsPerNs * elapsed >= _range)
        {
            // At max power a whole extra wrap fits in this interval: any delta is possible, the smallest is counted.
            Total += delta;
            AmbiguousIntervals++;
            return new CounterStep(delta, elapsed, SpoolFlags.WrapAmbiguous);
        }
        if (delta > bound)
            return Reject(elapsed);

        Total += delta;
        return new CounterStep(delta, elapsed, SpoolFlags.None);
    }

    private CounterStep Reject(long elapsed)
    {
        ImplausibleIntervals++;
        return new CounterStep(0, elapsed, SpoolFlags.Implausible);
    }
}
