using Alumet.Hpc.Core;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Outputs.Uncertainty;

/// <summary>
/// Streams one consumer's spool records and keeps, per series, what the uncertainty of its total needs
/// (docs/uncertainty.md): record count, Σ value², measured time, time no record covers and the bound of
/// lower-bound records. Memory: a few numbers per series, whatever the spool length.
/// </summary>
internal sealed class UncertaintyAccumulator
{
    /// <summary>Two records of a series further apart than this lost the records between them (clock jitter stays far below).</summary>
    internal const long GapToleranceNs = 50_000_000;

    private readonly double[] _jpu;
    private readonly double _maxPowerW;
    private readonly long[] _n, _measuredNs, _gapNs, _coveredEnd, _lastEnd, _lastNonZeroEnd;
    /// <summary>Per series: <see cref="GapToleranceNs"/>, plus one read interval for a source read on its own thread (NVML),
    /// whose rows' intervals end at its last read before their timestamps, not at them: two consecutive rows' intervals
    /// seem up to one read interval apart though nothing was lost (README "Timing").</summary>
    private readonly long[] _gapToleranceNs;
    private readonly Int128[] _raw; // a long overflows at 2^31 J in perf's 2^-32 J (JobSummary)
    private readonly Int128[] _splitRaw, _splitNodeRaw; // Σ over the periods whose split the file holds: this consumer's, the node's
    private readonly double[] _sumSq, _wrapBoundJ;

    public UncertaintyAccumulator(SpoolMeta meta, double maxPowerW)
    {
        int n = meta.Series.Count;
        _jpu = meta.Series.Select(s => s.JoulesPerUnit).ToArray();
        _maxPowerW = maxPowerW;
        _raw = new Int128[n]; _splitRaw = new Int128[n]; _splitNodeRaw = new Int128[n]; _n = new long[n]; _measuredNs = new long[n]; _gapNs = new long[n];
        _coveredEnd = new long[n]; _lastEnd = new long[n]; _lastNonZeroEnd = new long[n];
        _sumSq = new double[n]; _wrapBoundJ = new double[n];
        double nvmlHz = meta.SourceHz.TryGetValue(Sources.Nvml.NvmlSource.SourceName, out double hz) && hz > 0 ? hz : 1; // nvml_hz ≥ 1
        _gapToleranceNs = meta.Series
            .Select(s => MeasurementInterfaces.ReadOnItsOwnThread(s.Interface) ? GapToleranceNs + (long)(1e9 / nvmlHz) : GapToleranceNs)
            .ToArray();
    }

    /// <summary>A record of <paramref name="series"/> in a period whose split the file holds (<see cref="SplitPeriods"/>):
    /// its value and the node's energy of the same counter in that period.</summary>
    public void AddSplit(int series, long value, Int128 nodeRaw)
    {
        _splitRaw[series] += value;
        _splitNodeRaw[series] += nodeRaw;
    }

    public void Add(in SpoolRecord r)
    {
        int s = r.Series;
        _raw[s] += r.Value;
        _n[s]++;
        _sumSq[s] += (double)r.Value * r.Value;
        long interval = Math.Max(0, r.IntervalNs);
        _measuredNs[s] += interval;
        long start = r.WallNs - interval;
        // A row that covers no time (none of its channel's reads succeeded in the period) neither opens nor closes a gap:
        // the recovery row's energy covers the time since the last good read (README "Timing"), so only time that no row
        // covers is lost: between covered rows here, after the last one in Finish.
        if (_coveredEnd[s] == 0) _coveredEnd[s] = start;
        if (interval > 0)
        {
            long hole = start - _coveredEnd[s];
            if ((r.Flags & SpoolFlags.ReadError) != 0 && hole > 0)
                // A row whose reads failed after its last good read ends there, before its timestamp: it covers from the
                // series' last covered end, and the time after it is lost only if no later row (the recovery) covers it.
                _coveredEnd[s] += interval;
            else
            {
                if (hole > _gapToleranceNs[s]) _gapNs[s] += hole;
                if (r.WallNs > _coveredEnd[s]) _coveredEnd[s] = r.WallNs;
            }
        }
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
    }

    /// <summary>
    /// The uncertainty of this consumer's TotalEnergy (domains that count in it).
    /// </summary>
    /// <param name="wholeCounter">This is the node consumer (whole counters), not a share.</param>
    /// <param name="cpuTimeSplit">Whether CPU-side energy was split by CPU time (false: exclusive attribution).</param>
    /// <param name="startNs">Where the consumer's first period starts (<see cref="ConsumerSummary.StartNs"/>): a series none of
    /// whose rows covers time was unread from there.</param>
    public EnergyUncertainty Finish(SpoolMeta meta, ResourceKind[] kinds, UncertaintyModel model, bool wholeCounter, bool cpuTimeSplit, long startNs)
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
            random2 += wholeCounter ? q2 / 6 : _n[s] * (q2 / 6 + jpu * jpu / 12);
            // Partial sampling: independent per stored interval.
            random2 += acc.RandomRelPerRecord * acc.RandomRelPerRecord * _sumSq[s] * jpu * jpu;

            // Attribution: energy the CPU-time split may have moved between this consumer and the others of the node.
            // Over the periods whose split the file holds, f = this consumer's part of the node's energy; over the others
            // (the node shared with other jobs: a job's file holds its own share only, README "Who sees what") the node's
            // energy is unknown, so 1 − f is taken at its bound, 1 (docs/uncertainty.md, section 6).
            if (!wholeCounter && cpuTimeSplit && kinds[s] != ResourceKind.Gpu)
            {
                double split = (double)_splitRaw[s] * jpu, splitNode = (double)_splitNodeRaw[s] * jpu;
                double f = splitNode > 0 ? Math.Clamp(split / splitNode, 0, 1) : 0;
                attribution += model.AttributionRel * (split * (1 - f) + Math.Max(0, e - split));
            }

            // One-sided: lower-bound intervals, and time no row covers: records lost between stored ones, reads that failed
            // until the series' last row. A last row that says a read failed but covers time is a recovery (its energy
            // spans the failed reads, and is in the total) or ends at its last good read, whose tail is uncovered (Add).
            if (_measuredNs[s] == 0)
            {
                // No row covers time (its reads failed from its first row on): its power is not known, so the time from the
                // consumer's start to its last row is bounded as a rejected reading's: all of it, at up to max_power_w.
                long unread = _lastEnd[s] - startNs;
                missed += unread > _gapToleranceNs[s] ? _maxPowerW * (unread / 1e9) : 0;
                continue;
            }
            double meanW = e / (_measuredNs[s] / 1e9);
            // Rows after the last covered one that cover nothing: the series' reads failed until its last row.
            long uncoveredTail = _lastEnd[s] - _coveredEnd[s];
            long lostNs = _gapNs[s] + (uncoveredTail > _gapToleranceNs[s] ? uncoveredTail : 0);
            missed += _wrapBoundJ[s] + meanW * (lostNs / 1e9);
        }
        double interfaces2 = systematicByInterface.Values.Sum(v => v * v);
        return new EnergyUncertainty(Math.Sqrt(interfaces2), attribution, Math.Sqrt(random2), missed, model.CoverageFactor);
    }
}

/// <summary>
/// Finds, while a job's spool streams, the periods whose split its file holds: those with an <c>unattributed</c> record of
/// the counter at the period's stamp (the job alone on the node, or exclusive; README "Who sees what"). There the node's
/// energy of the counter is the job's share + <c>other_jobs</c> + <c>unattributed</c> (every consumer but the steps,
/// which are parts of the job's share), and each consumer's record of that period is credited with it
/// (<see cref="UncertaintyAccumulator.AddSplit"/>). A period's split records of one counter share its stamp and come
/// together (node records, which at raw storage are reads at their own stamps, are not passed in), so one open period
/// per counter is enough: memory does not grow with the spool.
/// </summary>
internal sealed class SplitPeriods
{
    /// <summary>Roles of the consumers passed to <see cref="Add"/>.</summary>
    public enum Role { Job, Part, Unattributed, Step }

    private readonly UncertaintyAccumulator[] _byConsumer;
    private readonly long[] _stamp;
    private readonly bool[] _open, _split, _hasJob;
    private readonly Int128[] _node;
    private readonly List<(int Consumer, int Series, long Value, bool Job)>[] _records;
    private readonly Int128[] _countedJobRaw, _countedNodeRaw;
    private readonly double[] _countedJpu;

    /// <param name="counters">How many counters the spool's series belong to (the indices passed to <see cref="Add"/>).</param>
    /// <param name="byConsumer">The accumulator of each consumer index passed to <see cref="Add"/>.</param>
    public SplitPeriods(int counters, UncertaintyAccumulator[] byConsumer)
    {
        _byConsumer = byConsumer;
        _stamp = new long[counters];
        _open = new bool[counters];
        _split = new bool[counters];
        _hasJob = new bool[counters];
        _node = new Int128[counters];
        _countedJobRaw = new Int128[counters];
        _countedNodeRaw = new Int128[counters];
        _countedJpu = new double[counters];
        _records = new List<(int, int, long, bool)>[counters];
        for (int i = 0; i < counters; i++) _records[i] = new();
    }

    /// <summary>Job share records (any domain) stored in periods without the split: the job shared the node then.</summary>
    public long SharedRecords { get; private set; }

    /// <summary>The job's energy and the node's, J, in the domains of TotalEnergy, over the periods whose split the file holds.</summary>
    public (double JobJ, double NodeJ) SplitTotals
    {
        get
        {
            double job = 0, node = 0;
            for (int k = 0; k < _countedJpu.Length; k++)
            {
                job += (double)_countedJobRaw[k] * _countedJpu[k];
                node += (double)_countedNodeRaw[k] * _countedJpu[k];
            }
            return (job, node);
        }
    }

    /// <param name="counted">The counter's domain counts in TotalEnergy (with its J per raw unit in <paramref name="jpu"/>).</param>
    public void Add(int counter, Role role, int consumer, int series, long wallNs, long value, bool counted, double jpu)
    {
        if (_open[counter] && _stamp[counter] != wallNs) Close(counter);
        if (!_open[counter])
        {
            _open[counter] = true;
            _stamp[counter] = wallNs;
            _split[counter] = false;
            _hasJob[counter] = false;
            _node[counter] = 0;
            _records[counter].Clear();
        }
        if (role == Role.Unattributed) _split[counter] = true;
        if (role != Role.Step) _node[counter] += value;
        if (role == Role.Job) _hasJob[counter] = true;
        if (counted) _countedJpu[counter] = jpu;
        _records[counter].Add((consumer, series, value, role == Role.Job));
    }

    /// <summary>Closes every open period (the end of the spool).</summary>
    public void Finish()
    {
        for (int k = 0; k < _open.Length; k++)
            if (_open[k]) Close(k);
    }

    private void Close(int counter)
    {
        _open[counter] = false;
        if (!_split[counter])
        {
            if (_hasJob[counter]) SharedRecords++;
            return;
        }
        Int128 node = _node[counter];
        if (_countedJpu[counter] > 0) _countedNodeRaw[counter] += node;
        foreach (var (consumer, series, value, job) in _records[counter])
        {
            _byConsumer[consumer].AddSplit(series, value, node);
            if (job && _countedJpu[counter] > 0) _countedJobRaw[counter] += value;
        }
    }
}
