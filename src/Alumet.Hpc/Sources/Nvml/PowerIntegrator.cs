namespace Alumet.Hpc.Sources.Nvml;

/// <summary>
/// Turns power samples (mW) taken at monotonic times (ns) into a synthetic integer energy counter in mJ, for GPUs
/// without an energy counter. Trapezoid rule between consecutive samples (linear power between reads, also across a
/// failed read). The sub-mJ remainder is kept exactly, in units of half a picojoule, so no energy is lost to rounding
/// however fast the polling: mW × ns = 1 pJ, and (p0 + p1) × dt counts half-pJ.
/// </summary>
public struct PowerIntegrator
{
    private const ulong HalfPicojoulesPerMillijoule = 2_000_000_000;

    private UInt128 _remainder;   // half-pJ not yet a whole mJ, always < 2e9
    private uint _lastMilliwatts;
    private long _lastNs;
    private bool _primed;

    /// <summary>The synthetic counter: whole mJ integrated since the first sample. Never wraps in practice (64-bit).</summary>
    public ulong Millijoules { get; private set; }

    public readonly bool Primed => _primed;

    /// <summary>Adds a sample. The first sample only sets the starting point; a non-increasing time adds nothing.</summary>
    public void Add(uint milliwatts, long monotonicNs)
    {
        if (_primed && monotonicNs > _lastNs)
        {
            // (p0 + p1) <= 2^33, dt < 2^63: the product needs up to 96 bits.
            _remainder += ((UInt128)_lastMilliwatts + milliwatts) * (ulong)(monotonicNs - _lastNs);
            UInt128 whole = _remainder / HalfPicojoulesPerMillijoule;
            _remainder -= whole * HalfPicojoulesPerMillijoule;
            Millijoules += (ulong)whole;
        }
        else if (_primed)
        {
            return; // same instant (or clock misuse): keep the earlier sample as the interval start
        }
        _primed = true;
        _lastMilliwatts = milliwatts;
        _lastNs = monotonicNs;
    }
}
