using System.Runtime.CompilerServices;
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
    /// <summary>Elapsed times 0 ≤ e &lt; this are never wrap-ambiguous (the bound's test below is false for all of them).</summary>
    private readonly ulong _unambiguousNs;
    /// <summary>Deltas ≤ this are plausible over any elapsed time ≥ 0 (≤ the bound at elapsed 0, which only grows with it).</summary>
    private readonly ulong _plausibleDelta;
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
        (_unambiguousNs, _plausibleDelta) = FastBounds(_maxUnitsPerNs, _range, slackNs);
    }

    /// <summary>
    /// The integer thresholds of <see cref="Read"/>'s common case, found once with the same double expressions as its
    /// general case, so that both answer alike: both expressions grow with the elapsed time (a long converted to double,
    /// times a positive constant, rounded: monotonic), so below the first elapsed time that is ambiguous none is, and a
    /// delta not above the bound at elapsed 0 is below every later one. (0, 0) — no common case — for an unbounded or
    /// odd model (infinite or non-positive rate).
    /// </summary>
    private static (ulong UnambiguousNs, ulong PlausibleDelta) FastBounds(double unitsPerNs, double range, long slackNs)
    {
        if (!(unitsPerNs > 0 && double.IsFinite(unitsPerNs)) || slackNs < 0) return (0, 0);
        // Ambiguous when unitsPerNs * e >= range (finite range): the first such e, by bisection over [0, limit].
        long limit = long.MaxValue - slackNs; // elapsed + slack never overflows below it
        long lo = 0, hi = limit; // invariant: e < lo is never ambiguous; hi is ambiguous or the limit
        if (double.IsFinite(range))
        {
            while (lo < hi)
            {
                long mid = lo + (hi - lo) / 2;
                if (unitsPerNs * mid >= range) hi = mid; else lo = mid + 1;
            }
        }
        else lo = limit;
        double bound0 = unitsPerNs * (0 + slackNs);
        ulong plausible = bound0 >= 9e18 ? 9_000_000_000_000_000_000UL : (ulong)Math.Floor(bound0);
        while (plausible > 0 && (double)plausible > bound0) plausible--;
        return ((ulong)lo, plausible);
    }

    /// <summary>The counter of <paramref name="channel"/>, bounded by <paramref name="maxPowerW"/> with its interface's slack.</summary>
    public static EnergyCounter For(EnergyChannel channel, double maxPowerW) =>
        channel.Interface.IsEstimate()
            ? new EnergyCounter(channel.Modulus, double.PositiveInfinity) // a model: nothing to reset, its power is what it computes
            : new EnergyCounter(channel.Modulus, maxPowerW / channel.JoulesPerUnit, channel.Interface.PlausibilitySlackNs());

    /// <summary>
    /// This counter bounded by another <paramref name="maxPowerW"/> (<c>ctl set max_power_w</c>, applied without restart:
    /// README "The node sampler"), by the rules of <see cref="For"/>; its last reading, that reading's time and its totals
    /// are kept, so the next reading is judged by the new bound and nothing counted so far changes.
    /// </summary>
    public readonly EnergyCounter Rebound(EnergyChannel channel, double maxPowerW)
    {
        var c = For(channel, maxPowerW);
        c._last = _last;
        c._lastNs = _lastNs;
        c._primed = _primed;
        c.Total = Total;
        c.AmbiguousIntervals = AmbiguousIntervals;
        c.ImplausibleIntervals = ImplausibleIntervals;
        return c;
    }

    public readonly bool Primed => _primed;

    /// <summary>Feeds a new raw reading taken at <paramref name="monotonicNs"/> (CLOCK_MONOTONIC).</summary>
    /// <remarks>The tick's case inline (a primed counter, in range, a delta below <see cref="_plausibleDelta"/> over an
    /// elapsed time below <see cref="_unambiguousNs"/>): integers only, the same answer as <see cref="ReadGeneral"/>.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public CounterStep Read(ulong raw, long monotonicNs)
    {
        ulong last = _last;
        long elapsed = monotonicNs - _lastNs;
        if (_primed && (_modulus == 0 || raw < _modulus) && (ulong)elapsed < _unambiguousNs)
        {
            // ReadGeneral's delta: with modulus 0, raw + (0 - last) is raw - last modulo 2^64.
            ulong delta = raw >= last ? raw - last : raw + (_modulus - last);
            if (delta <= _plausibleDelta)
            {
                _last = raw;
                _lastNs = monotonicNs;
                Total += delta;
                return new CounterStep(delta, elapsed, SpoolFlags.None);
            }
        }
        return ReadGeneral(raw, monotonicNs);
    }

    private CounterStep ReadGeneral(ulong raw, long monotonicNs)
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
