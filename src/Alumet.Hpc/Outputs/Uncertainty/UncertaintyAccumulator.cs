using Alumet.Hpc.Core;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Outputs.Uncertainty;

/// <summary>
/// Streams one consumer's spool records and keeps, per series, what the uncertainty of its total needs
/// (docs/uncertainty.md): record count, Σ value², measured time, lost time between records, the bound of
/// lower-bound records, and whether the last read failed. Memory: a few numbers per series, whatever the spool length.
/// </summary>
internal sealed class UncertaintyAccumulator
{
    /// <summary>Two records of a series further apart than this lost the records between them (clock jitter stays far below).</summary>
    internal const long GapToleranceNs = 50_000_000;

    private readonly double[] _jpu;
    private readonly double _maxPowerW;
    private readonly long[] _n, _measuredNs, _gapNs, _lastEnd, _lastNonZeroEnd, _lastIntervalNs;
    private readonly Int128[] _raw; // a long overflows at 2^31 J in perf's 2^-32 J (JobSummary)
    private readonly double[] _sumSq, _wrapBoundJ;
    private readonly bool[] _lastReadError;

    public UncertaintyAccumulator(SpoolMeta meta, double maxPowerW)
    {
        int n = meta.Series.Count;
        _jpu = meta.Series.Select(s => s.JoulesPerUnit).ToArray();
        _maxPowerW = maxPowerW;
        _raw = new Int128[n]; _n = new long[n]; _measuredNs = new long[n]; _gapNs = new long[n];
        _lastEnd = new long[n]; _lastNonZeroEnd = new long[n]; _lastIntervalNs = new long[n];
        _sumSq = new double[n]; _wrapBoundJ = new double[n];
        _lastReadError = new bool[n];
    }

    public Int128 RawOf(int series) => _raw[series];

    public void Add(in SpoolRecord r)
    {
        int s = r.Series;
        _raw[s] += r.Value;
        _n[s]++;
        _sumSq[s] += (double)r.Value * r.Value;
        long interval = Math.Max(0, r.IntervalNs);
        _measuredNs[s] += interval;
        long start = r.WallNs - interval;
        if (_lastEnd[s] != 0 && start - _lastEnd[s] > GapToleranceNs) _gapNs[s] += start - _lastEnd[s];
        if ((r.Flags & (SpoolFlags.WrapAmbiguous | SpoolFlags.Implausible)) != 0)
        {
            // While reads stall, stored intervals carry 0: the flagged read spans back to the last energy seen.
            long since = _lastNonZeroEnd[s] != 0 ? _lastNonZeroEnd[s] : start;
            double boundJ = _maxPowerW * (Math.Max(interval, r.WallNs - since) / 1e9);
            // Wrap-ambiguous: the value is the smallest consistent delta, the truth at most the bound.
            // Implausible: the read was rejected (0 counted): all of it may be missing.
            _wrapBoundJ[s] += (r.Flags & SpoolFlags.Implausible) != 0 ? boundJ : Math.Max(0, boundJ - r.Value * _jpu[s]);
        }
        if (r.Value != 0) _lastNonZeroEnd[s] = r.WallNs;
        if (r.WallNs > _lastEnd[s]) _lastEnd[s] = r.WallNs;
        _lastIntervalNs[s] = interval;
        _lastReadError[s] = (r.Flags & SpoolFlags.ReadError) != 0;
    }

    /// <summary>
    /// The uncertainty of this consumer's TotalEnergy (domains that count in it).
    /// </summary>
    /// <param name="node">The node consumer's accumulator (whole counters), for the attributed fraction; null when this is the node.</param>
    /// <param name="nodeSeriesOf">For each series, the node series of the same counter, or -1.</param>
    /// <param name="cpuTimeSplit">Whether CPU-side energy was split by CPU time (false: exclusive attribution).</param>
    public EnergyUncertainty Finish(SpoolMeta meta, ResourceKind[] kinds, UncertaintyModel model,
        UncertaintyAccumulator? node, int[] nodeSeriesOf, bool cpuTimeSplit)
    {
        var systematicByInterface = new Dictionary<string, double>(StringComparer.Ordinal);
        double random2 = 0, attribution = 0, missed = 0;
        for (int s = 0; s < _raw.Length; s++)
        {
            if (_n[s] == 0 || !kinds[s].CountsInTotal()) continue;
            var series = meta.Series[s];
            var acc = model.For(series.Interface);
            double jpu = _jpu[s];
            double e = (double)_raw[s] * jpu;

            // Interface accuracy: systematic, so linear within a counter and across counters of one interface.
            systematicByInterface[series.Interface] = systematicByInterface.GetValueOrDefault(series.Interface) + acc.SystematicRel * e;

            // Quantisation: a whole counter's total is the difference of two truncated reads (q²/6); a share adds,
            // per record, both reads' truncation and the floor() of the split (conservative: independent records).
            double q2 = acc.QuantumJ * acc.QuantumJ;
            random2 += node is null ? q2 / 6 : _n[s] * (q2 / 6 + jpu * jpu / 12);
            // Partial sampling: independent per stored interval.
            random2 += acc.RandomRelPerRecord * acc.RandomRelPerRecord * _sumSq[s] * jpu * jpu;

            // Attribution: energy the CPU-time split may have moved between this consumer and the others of the node.
            if (node is not null && cpuTimeSplit && kinds[s] != ResourceKind.Gpu && nodeSeriesOf[s] >= 0)
            {
                double nodeJ = (double)node.RawOf(nodeSeriesOf[s]) * meta.Series[nodeSeriesOf[s]].JoulesPerUnit;
                double f = nodeJ > 0 ? Math.Clamp(e / nodeJ, 0, 1) : 0;
                attribution += model.AttributionRel * e * (1 - f);
            }

            // One-sided: lower-bound intervals, records lost between stored ones, a failed last read.
            double meanW = _measuredNs[s] > 0 ? e / (_measuredNs[s] / 1e9) : 0;
            missed += _wrapBoundJ[s] + meanW * (_gapNs[s] / 1e9) + (_lastReadError[s] ? meanW * (_lastIntervalNs[s] / 1e9) : 0);
        }
        double interfaces2 = systematicByInterface.Values.Sum(v => v * v);
        return new EnergyUncertainty(Math.Sqrt(interfaces2), attribution, Math.Sqrt(random2), missed, model.CoverageFactor);
    }
}
