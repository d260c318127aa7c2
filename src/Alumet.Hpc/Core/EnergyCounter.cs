namespace Alumet.Hpc.Core;

/// <summary>
/// Wrap-safe accumulator for one raw energy counter. Keeps integers only.
/// powercap's <c>energy_uj</c> runs from 0 to <c>max_energy_range_uj</c> inclusive and then restarts at 0, so the
/// modulus is <c>max_energy_range_uj + 1</c>; the underlying RAPL MSR is 32-bit and wraps every ~130-330 s at
/// 200-500 W (DESIGN.md, hardware facts).
/// A single wrap between two reads is recovered exactly. When the elapsed time is long enough that, at the
/// configured maximum power, the counter could have wrapped more than once, the number of wraps is unknowable:
/// the interval is counted with the smallest consistent delta (a lower bound) and flagged, never silently.
/// </summary>
public struct EnergyCounter
{
    private readonly ulong _modulus;
    private readonly double _maxUnitsPerNs;
    private ulong _last;
    private bool _primed;

    /// <summary>Accumulated raw units since the first read.</summary>
    public ulong Total;
    /// <summary>Intervals whose delta is only a lower bound (possible extra wraps, or a counter reset).</summary>
    public int AmbiguousIntervals;

    /// <param name="modulus">Counter range (0 = never wraps).</param>
    /// <param name="maxUnitsPerSecond">Plausibility bound: the most raw units per second this domain can produce.</param>
    public EnergyCounter(ulong modulus, double maxUnitsPerSecond)
    {
        _modulus = modulus;
        _maxUnitsPerNs = maxUnitsPerSecond / 1e9;
    }

    public readonly bool Primed => _primed;

    /// <summary>Feeds a new raw reading taken <paramref name="elapsedNs"/> after the previous one.</summary>
    /// <returns>The raw delta added to <see cref="Total"/>, and whether it is a lower bound.</returns>
    public (ulong Delta, bool Ambiguous) Update(ulong raw, long elapsedNs)
    {
        if (!_primed)
        {
            _primed = true;
            _last = raw;
            return (0, false);
        }

        ulong delta;
        bool ambiguous = false;
        if (raw >= _last)
        {
            delta = raw - _last;
        }
        else if (_modulus != 0 && raw < _modulus)
        {
            delta = raw + (_modulus - _last);
        }
        else
        {
            // A 64-bit counter going backwards is a reset (driver reload): nothing can be recovered.
            delta = 0;
            ambiguous = true;
        }

        if (_modulus != 0 && _maxUnitsPerNs * elapsedNs >= _modulus)
            ambiguous = true; // at max power a whole extra wrap fits in this interval

        _last = raw;
        Total += delta;
        if (ambiguous) AmbiguousIntervals++;
        return (delta, ambiguous);
    }
}
