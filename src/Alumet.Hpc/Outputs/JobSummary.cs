using Alumet.Hpc.Core;
using Alumet.Hpc.Outputs.Carbon;
using Alumet.Hpc.Outputs.Uncertainty;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Outputs;

/// <summary>Energy of one consumer per RAPL/NVML domain, in joules; <paramref name="WallJ"/> is the BMC's whole-node wall
/// energy (<c>node_wall</c>), a separate domain that contains the others and is never added to them.</summary>
public sealed record DomainEnergies(double PackageJ, double CoreJ, double UncoreJ, double DramJ, double PsysJ, double GpuJ, double WallJ = 0)
{
    public static readonly DomainEnergies Zero = new(0, 0, 0, 0, 0, 0);

    /// <summary>Package + DRAM + GPU (<see cref="ResourceKinds.CountsInTotal"/>): cores/uncore are inside the package, psys contains both.</summary>
    public double TotalJ => PackageJ + DramJ + GpuJ;

    public double this[ResourceKind kind] => kind switch
    {
        ResourceKind.CpuPackage => PackageJ,
        ResourceKind.CpuCores => CoreJ,
        ResourceKind.Uncore => UncoreJ,
        ResourceKind.Dram => DramJ,
        ResourceKind.Psys => PsysJ,
        ResourceKind.Gpu => GpuJ,
        ResourceKind.NodeWall => WallJ,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    internal static DomainEnergies FromArray(ReadOnlySpan<double> byKind) =>
        new(byKind[(int)ResourceKind.CpuPackage], byKind[(int)ResourceKind.CpuCores], byKind[(int)ResourceKind.Uncore],
            byKind[(int)ResourceKind.Dram], byKind[(int)ResourceKind.Psys], byKind[(int)ResourceKind.Gpu], byKind[(int)ResourceKind.NodeWall]);

    public DomainEnergies Plus(DomainEnergies o) =>
        new(PackageJ + o.PackageJ, CoreJ + o.CoreJ, UncoreJ + o.UncoreJ, DramJ + o.DramJ, PsysJ + o.PsysJ, GpuJ + o.GpuJ, WallJ + o.WallJ);
}

/// <summary>
/// What one consumer (<c>job:&lt;id&gt;</c>, <c>step:&lt;id&gt;.&lt;step&gt;</c>, <c>node</c> ...) used over the spool.
/// </summary>
/// <param name="StartNs">Start of the first stored interval (WallNs - IntervalNs of the earliest record of a source read at
/// the periods' ends: an NVML row's interval ends at its last read, up to one read interval before its timestamp, README
/// "Timing"), Unix ns; 0 when there is no record.</param>
/// <param name="EndNs">End of the last stored interval, Unix ns.</param>
/// <param name="MaxPowerW">Highest power of the counted domains over windows of consecutive stored intervals at least
/// max(storage_period_ms, attribution_period_ms) long (a short last interval joins the window before it): a few-ms
/// final interval that caught an NVML counter step, or one 1 ms RAPL read, never makes the peak. A window's power is
/// the sum of each source's energy over that source's own time in it.</param>
/// <param name="Samples">Number of spool records of this consumer.</param>
/// <param name="WrapAmbiguous">Records flagged <see cref="SpoolFlags.WrapAmbiguous"/>: the energy is a lower bound.</param>
/// <param name="ReadErrors">Records flagged <see cref="SpoolFlags.ReadError"/>.</param>
/// <param name="Implausible">Records flagged <see cref="SpoolFlags.Implausible"/>: a reading was rejected (reset or impossible jump), its interval is missing.</param>
/// <param name="MeasuredNs">Time covered by the stored intervals on the monotonic clock (the longest series' sum of
/// interval lengths, among the sources read at the periods' ends when there is one: an NVML series' sum runs from its
/// last read before the first period to its last read before the end): a wall-clock step (NTP, an admin's date) changes
/// the timestamps, never this.</param>
/// <param name="CgroupGonePeriods">Periods whose records are flagged <see cref="SpoolFlags.CgroupGone"/>: the consumer's
/// cgroup was gone at the period's end and its CPU time since the read before is not in its share (it is in
/// unattributed): the energy is a lower bound.</param>
public sealed record ConsumerSummary(
    string Consumer, DomainEnergies Energy, long StartNs, long EndNs, double MaxPowerW, long Samples, long WrapAmbiguous, long ReadErrors,
    long Implausible = 0, long MeasuredNs = 0, long CgroupGonePeriods = 0)
{
    public double TotalEnergyJ => Energy.TotalJ;
    /// <summary>Seconds measured, monotonic clock (<see cref="MeasuredNs"/>).</summary>
    public double ElapsedS => MeasuredNs / 1e9;
    /// <summary>Average power of the counted domains: the sum over sources of each one's energy over its own measured time,
    /// as <see cref="MaxPowerW"/>'s windows (an NVML series' energy covers the time between its own reads, up to one read
    /// interval more or less than <see cref="ElapsedS"/>: README "Timing"); TotalEnergy / Elapsed when every source is
    /// read at the periods' ends.</summary>
    public double AvePowerW { get; init; }
    public DateTime Start => Clock.FromWallNs(StartNs);
    public DateTime End => Clock.FromWallNs(EndNs);
    /// <summary>Uncertainty of <see cref="TotalEnergyJ"/> (docs/uncertainty.md).</summary>
    public EnergyUncertainty Uncertainty { get; init; } = EnergyUncertainty.None;
}

/// <summary>How a summary qualifies its totals: the uncertainty model, and the facility/carbon inputs (none by default).</summary>
public sealed record SummaryOptions(UncertaintyModel Uncertainty, CarbonInputs Carbon)
{
    public static SummaryOptions Default { get; } = new(UncertaintyModel.Default, CarbonInputs.None);

    public static SummaryOptions FromConfig(Config.AlumetConfig cfg) => new(UncertaintyModel.FromConfig(cfg), CarbonInputs.FromConfig(cfg));
}

/// <summary>A job step's share (<c>step:1234.batch</c>): a subdivision of the job's share, never added to the job total.</summary>
public sealed record StepSummary(string StepId, ConsumerSummary Summary);

/// <summary>
/// Per-job summary computed by streaming a spool once (bounded memory). Raw integers are summed per series
/// and converted to joules once at the end, so the totals equal what a reader gets by summing the Parquet
/// values per series, and the conservation invariant (job + other_jobs + unattributed = node) holds exactly in raw units.
/// </summary>
public sealed record JobSummary(
    string JobId,
    ConsumerSummary Job,
    ConsumerSummary Node,
    ConsumerSummary Unattributed,
    ConsumerSummary OtherJobs,
    IReadOnlyList<StepSummary> Steps,
    IReadOnlyList<string> Interfaces,
    bool Estimated,
    string EstimateModel,
    IReadOnlyDictionary<string, double> SourceHz,
    string Perimeter)
{
    /// <summary>The job's facility energy and CO2e over its own timeline (docs/carbon.md); <see cref="FacilityCarbon.None"/> when not configured.</summary>
    public FacilityCarbon Carbon { get; init; } = FacilityCarbon.None;

    /// <summary>The job's share records stored in periods it shared the node: its file holds no split of those periods
    /// (README "Who sees what"), so the node's energy then, and the job's fraction of it, are not known from the file.</summary>
    public long SharedRecords { get; init; }

    /// <summary>The job's energy in TotalEnergy's domains over the periods whose split its file holds (alone on the node, or
    /// exclusive), J; <see cref="SplitNodeJ"/> is the node's over the same periods.</summary>
    public double SplitJobJ { get; init; }

    /// <summary>The node's energy in TotalEnergy's domains over the periods whose split the job's file holds, J.</summary>
    public double SplitNodeJ { get; init; }

    public static string StepPrefix(string jobId) => $"step:{jobId}.";

    /// <summary>Interfaces joined with ',' (<c>powercap,nvml-energy-counter</c>).</summary>
    public string InterfaceList => string.Join(',', Interfaces);

    /// <summary>Source rates as <c>rapl=1000,nvml=20</c> (sorted by source name).</summary>
    public string FrequencyList => FormatFrequency(SourceHz);

    /// <summary>The highest source rate, Hz (what a single "frequency" column shows).</summary>
    public double MaxFrequencyHz => SourceHz.Count == 0 ? 0 : SourceHz.Values.Max();

    public static string FormatFrequency(IReadOnlyDictionary<string, double> hz) =>
        string.Join(',', hz.OrderBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(kv => $"{kv.Key}={kv.Value.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}"));

    /// <summary>Reads meta.json and streams spool.bin of <paramref name="spoolDirectory"/>, in chunks of
    /// <see cref="SpoolReader.SmallChunkRecords"/>: the summary reads one record at a time, and the finalize-job child's Parquet
    /// writer comes after it with its own 2 MB chunk (a 2 MB one here stayed on the large-object heap beside it: +1.9 MB
    /// of the child's peak RSS for 11 s of 1 kHz reads, docs/performance-log.md 2026-12-03).</summary>
    public static JobSummary FromSpool(string spoolDirectory, SummaryOptions? options = null) =>
        FromSpool(SpoolWriter.ReadMeta(spoolDirectory), SpoolReader.ReadChunks(spoolDirectory, SpoolReader.SmallChunkRecords), options);

    public static JobSummary FromSpool(SpoolMeta meta, IEnumerable<ReadOnlyMemory<SpoolRecord>> chunks, SummaryOptions? options = null)
    {
        options ??= SummaryOptions.Default;
        string jobConsumer = SpoolSeries.JobConsumer(meta.JobId);
        string stepPrefix = StepPrefix(meta.JobId);

        // Consumer slot per series: 0 job, 1 node, 2 unattributed, 3 other_jobs, 4.. steps, -1 ignored.
        var stepIds = new List<string>();
        var slotOfSeries = new int[meta.Series.Count];
        var kindOfSeries = new ResourceKind[meta.Series.Count];
        for (int i = 0; i < meta.Series.Count; i++)
        {
            var s = meta.Series[i];
            kindOfSeries[i] = ResourceKinds.Parse(s.ResourceKind);
            slotOfSeries[i] = s.Consumer switch
            {
                _ when s.Consumer == jobConsumer => 0,
                SpoolSeries.NodeConsumer => 1,
                SpoolSeries.UnattributedConsumer => 2,
                SpoolSeries.OtherJobsConsumer => 3,
                _ when s.Consumer.StartsWith(stepPrefix, StringComparison.Ordinal) => 4 + StepSlot(stepIds, s.Consumer[stepPrefix.Length..]),
                _ => -1,
            };
        }

        // Peak-power windows: at least the storage period, and the attribution period the shares are stored at. Each
        // source stamps its own reads (raw storage: RAPL every ~1 ms, NVML every 20-100 ms; aggregated: NVML's rows
        // cover the time between its own last reads before two period ends), so a window's length and its power are
        // taken per source (interface), and only from the domains counted in the total, whose energy the peak is of.
        long windowNs = Math.Max(meta.StoragePeriodMs, meta.AttributionPeriodMs) * 1_000_000L;
        var clockOfSeries = new int[meta.Series.Count];
        var clocks = new Dictionary<string, int>(StringComparer.Ordinal);
        var ownThread = new bool[meta.Series.Count];
        for (int i = 0; i < clockOfSeries.Length; i++)
        {
            var s = meta.Series[i];
            ownThread[i] = MeasurementInterfaces.ReadOnItsOwnThread(s.Interface);
            if (!kindOfSeries[i].CountsInTotal()) clockOfSeries[i] = -1;
            else if (!clocks.TryGetValue(s.Interface, out clockOfSeries[i])) clocks[s.Interface] = clockOfSeries[i] = clocks.Count;
        }
        var acc = new ConsumerAccumulator[4 + stepIds.Count];
        for (int i = 0; i < acc.Length; i++) acc[i] = new ConsumerAccumulator(meta.Series.Count, windowNs, clockOfSeries, clocks.Count, ownThread);
        var unc = new UncertaintyAccumulator[acc.Length];
        for (int i = 0; i < unc.Length; i++) unc[i] = new UncertaintyAccumulator(meta, options.Uncertainty.MaxPowerW);
        var carbon = new CarbonAccumulator(options.Carbon);

        // The counter of each series (kind, id, interface): a period's split rows of one counter go together.
        var counterOf = new int[meta.Series.Count];
        var counters = new Dictionary<(string, string, string), int>();
        for (int i = 0; i < counterOf.Length; i++)
        {
            var s = meta.Series[i];
            var key = (s.ResourceKind, s.ResourceId, s.Interface);
            if (!counters.TryGetValue(key, out counterOf[i])) counters[key] = counterOf[i] = counters.Count;
        }
        static SplitPeriods.Role RoleOf(int slot) => slot switch
        {
            0 => SplitPeriods.Role.Job,
            2 => SplitPeriods.Role.Unattributed,
            3 => SplitPeriods.Role.Part,
            _ => SplitPeriods.Role.Step,
        };
        var splits = new SplitPeriods(counters.Count, unc);

        // J per raw unit for the domains that count in the total (0 for cores, uncore, psys): feeds the peak power.
        var countedJpu = new double[meta.Series.Count];
        for (int i = 0; i < countedJpu.Length; i++)
            countedJpu[i] = kindOfSeries[i].CountsInTotal() ? meta.Series[i].JoulesPerUnit : 0;

        foreach (var chunk in chunks)
        {
            foreach (ref readonly var r in chunk.Span)
            {
                if ((uint)r.Series >= (uint)slotOfSeries.Length) continue; // corrupt index: never crash a summary
                int slot = slotOfSeries[r.Series];
                if (slot < 0) continue;
                double counted = r.Value * countedJpu[r.Series];
                acc[slot].Add(in r, counted);
                unc[slot].Add(in r);
                if (slot == 0) carbon.Add(r.WallNs, r.IntervalNs, counted);
                if (slot != 1)
                    splits.Add(counterOf[r.Series], RoleOf(slot), slot, r.Series, r.WallNs, r.Value, countedJpu[r.Series] > 0, countedJpu[r.Series]);
            }
        }
        splits.Finish();

        bool cpuTimeSplit = meta.AttributionMode is not ("exclusive" or "none");
        ConsumerSummary Build(int slot, string consumer)
        {
            var summary = acc[slot].Finish(consumer, meta, kindOfSeries, meta.StartWallNs);
            return summary with
            {
                Uncertainty = unc[slot].Finish(meta, kindOfSeries, options.Uncertainty, wholeCounter: slot == 1, cpuTimeSplit, summary.StartNs),
            };
        }

        var steps = new List<StepSummary>(stepIds.Count);
        for (int i = 0; i < stepIds.Count; i++)
            steps.Add(new StepSummary($"{meta.JobId}.{stepIds[i]}", Build(4 + i, stepPrefix + stepIds[i])));
        steps.Sort((a, b) => StepOrder.Compare(a.StepId, b.StepId));

        var interfaces = meta.Series
            .Where(s => s.Consumer == jobConsumer || s.Consumer == SpoolSeries.NodeConsumer)
            .Select(s => s.Interface).Where(i => i.Length > 0).Distinct().OrderBy(i => i, StringComparer.Ordinal).ToList();
        bool estimated = interfaces.Contains(MeasurementInterface.Estimate.Wire());

        var job = Build(0, jobConsumer);
        var (splitJobJ, splitNodeJ) = splits.SplitTotals;
        return new JobSummary(
            meta.JobId,
            job, Build(1, SpoolSeries.NodeConsumer), Build(2, SpoolSeries.UnattributedConsumer), Build(3, SpoolSeries.OtherJobsConsumer),
            steps, interfaces, estimated, estimated ? meta.EstimateModel : "",
            new Dictionary<string, double>(meta.SourceHz), meta.Perimeter)
        {
            Carbon = carbon.Finish(job.TotalEnergyJ, job.Uncertainty),
            SharedRecords = splits.SharedRecords,
            SplitJobJ = splitJobJ,
            SplitNodeJ = splitNodeJ,
        };
    }

    private static int StepSlot(List<string> stepIds, string step)
    {
        int i = stepIds.IndexOf(step);
        if (i >= 0) return i;
        stepIds.Add(step);
        return stepIds.Count - 1;
    }

    /// <param name="ownThread">Per series: read on a thread of its own (NVML), whose intervals end at its reads, not at the
    /// periods' ends (<see cref="MeasurementInterfaces.ReadOnItsOwnThread"/>): Start and the measured time come from the other
    /// series when there are any.</param>
    private sealed class ConsumerAccumulator(int seriesCount, long windowNs, int[] clockOfSeries, int clocks, bool[] ownThread)
    {
        // Per series raw sums and monotonic time covered. Int128: a long holds 2^63 units, which in perf's 2^-32 J is
        // 2^31 J, ~50 days of a 500 W package; records are longs, so no sum of them can overflow an Int128.
        private readonly Int128[] _raw = new Int128[seriesCount];
        private readonly long[] _intervalNs = new long[seriesCount];
        private long _start = long.MaxValue, _periodStart = long.MaxValue, _end = long.MinValue;
        private long _samples, _wrap, _readErrors, _implausible, _gonePeriods, _lastGoneWallNs = long.MinValue;
        private readonly PeakPower _peak = new(windowNs, clocks);

        public void Add(in SpoolRecord r, double countedJoules)
        {
            _raw[r.Series] += r.Value;
            _intervalNs[r.Series] += r.IntervalNs;
            _samples++;
            if ((r.Flags & SpoolFlags.WrapAmbiguous) != 0) _wrap++;
            if ((r.Flags & SpoolFlags.ReadError) != 0) _readErrors++;
            if ((r.Flags & SpoolFlags.Implausible) != 0) _implausible++;
            // One per period: the period's records (one per domain) share its end.
            if ((r.Flags & SpoolFlags.CgroupGone) != 0 && r.WallNs != _lastGoneWallNs) (_gonePeriods, _lastGoneWallNs) = (_gonePeriods + 1, r.WallNs);
            long start = r.WallNs - r.IntervalNs;
            if (start < _start) _start = start;
            if (start < _periodStart && !ownThread[r.Series]) _periodStart = start;
            if (r.WallNs > _end) _end = r.WallNs;
            if (clockOfSeries[r.Series] >= 0) _peak.Add(r.WallNs, clockOfSeries[r.Series], r.IntervalNs, countedJoules);
        }

        public ConsumerSummary Finish(string consumer, SpoolMeta meta, ResourceKind[] kinds, long fallbackStart)
        {
            Span<double> byKind = stackalloc double[(int)ResourceKind.NodeWall + 1];
            for (int i = 0; i < _raw.Length; i++)
                if (_raw[i] != 0) byKind[(int)kinds[i]] += (double)_raw[i] * meta.Series[i].JoulesPerUnit;
            bool any = _samples > 0;
            long measured = 0, ownMeasured = 0;
            for (int i = 0; i < _intervalNs.Length; i++)
                if (ownThread[i]) ownMeasured = Math.Max(ownMeasured, _intervalNs[i]);
                else measured = Math.Max(measured, _intervalNs[i]);
            long elapsedNs = measured > 0 ? measured : ownMeasured;
            // Per source of the counted domains: its energy, and its own time (its longest series', as MeasuredNs).
            var clockJ = new double[clocks];
            var clockNs = new long[clocks];
            for (int i = 0; i < _raw.Length; i++)
            {
                int c = clockOfSeries[i];
                if (c < 0) continue;
                clockJ[c] += (double)_raw[i] * meta.Series[i].JoulesPerUnit;
                clockNs[c] = Math.Max(clockNs[c], _intervalNs[i]);
            }
            return new ConsumerSummary(consumer, DomainEnergies.FromArray(byKind),
                _periodStart != long.MaxValue ? _periodStart : any ? _start : fallbackStart, any ? _end : fallbackStart,
                _peak.Finish(), _samples, _wrap, _readErrors, _implausible, elapsedNs, _gonePeriods)
            {
                AvePowerW = elapsedNs > 0 ? PeakPower.Power(clockJ, clockNs, elapsedNs) : 0,
            };
        }
    }

    /// <summary>
    /// Peak power over windows of consecutive stored timestamps. Each source's reads of the counted domains at one
    /// timestamp form a step (their energy, and that source's interval); a window ends before the first timestamp after
    /// any source's steps in it add up to <c>windowNs</c>, and its power is the sum over sources of each one's energy over
    /// its own time in it (sources read at their own rates: adding a 1 ms RAPL step and a 50 ms NVML step as two steps
    /// counted most windows twice as long; and an NVML row's energy is that of the time between its own reads, 0.9 to
    /// 1.1 s of a 1 s period at 10 Hz, so its power is over that time, not over RAPL's period).
    /// A last window shorter than <c>windowNs</c> joins the one before it, so a few-ms final interval is averaged over a
    /// whole window. Records of one timestamp arrive close together in the spool, so only a small set of recent
    /// timestamps is kept open: memory stays bounded on a multi-day 1 kHz spool.
    /// </summary>
    private sealed class PeakPower(long windowNs, int clocks)
    {
        private const int OpenLimit = 4096;
        private readonly SortedDictionary<(long WallNs, int Clock), (double Joules, long IntervalNs)> _open = new();
        // Each source's energy and own time in the open window, and in the window before it.
        private readonly double[] _clockJ = new double[clocks], _prevJ = new double[clocks];
        private readonly long[] _clockNs = new long[clocks], _prevClockNs = new long[clocks];
        private double _max;
        private long _windowNs, _prevNs, _lastWallNs = long.MinValue;

        public void Add(long wallNs, int clock, long intervalNs, double joules)
        {
            var key = (wallNs, clock);
            _open[key] = _open.TryGetValue(key, out var t) ? (t.Joules + joules, Math.Max(t.IntervalNs, intervalNs)) : (joules, intervalNs);
            if (_open.Count > 2 * OpenLimit) CloseOldest(_open.Count - OpenLimit);
        }

        private void CloseOldest(int count)
        {
            var keys = _open.Keys.Take(count).ToArray();
            foreach (var k in keys)
            {
                var (j, ns) = _open[k];
                _open.Remove(k);
                Step(k.WallNs, k.Clock, j, ns);
            }
        }

        private void Step(long wallNs, int clock, double joules, long intervalNs)
        {
            if (wallNs != _lastWallNs && _windowNs >= windowNs && _windowNs > 0) CloseWindow();
            _lastWallNs = wallNs;
            _clockJ[clock] += joules;
            _clockNs[clock] += intervalNs;
            _windowNs = Math.Max(_windowNs, _clockNs[clock]);
        }

        private void CloseWindow()
        {
            if (_prevNs > 0) _max = Math.Max(_max, Power(_prevJ, _prevClockNs, _prevNs));
            Array.Copy(_clockJ, _prevJ, clocks);
            Array.Copy(_clockNs, _prevClockNs, clocks);
            _prevNs = _windowNs;
            _windowNs = 0;
            Array.Clear(_clockJ);
            Array.Clear(_clockNs);
        }

        /// <summary>Σ over sources of energy / own time; a source with energy but no time in the window (none of the
        /// sampler's rows: only a hand-made spool) takes the window's length.</summary>
        internal static double Power(double[] joules, long[] ns, long windowNs)
        {
            double w = 0;
            for (int c = 0; c < joules.Length; c++)
                if (ns[c] > 0) w += joules[c] / (ns[c] / 1e9);
                else if (joules[c] != 0) w += joules[c] / (windowNs / 1e9);
            return w;
        }

        public double Finish()
        {
            CloseOldest(_open.Count);
            if (_windowNs >= windowNs && _windowNs > 0) CloseWindow();
            // The short remainder joins the last full window; alone (a job shorter than one window) it is the window.
            for (int c = 0; c < clocks; c++)
            {
                _prevJ[c] += _clockJ[c];
                _prevClockNs[c] += _clockNs[c];
            }
            _prevNs += _windowNs;
            if (_prevNs > 0) _max = Math.Max(_max, Power(_prevJ, _prevClockNs, _prevNs));
            return _max;
        }
    }
}

/// <summary>Orders step ids like sacct: batch, extern, interactive, then numeric steps, then the rest.</summary>
public static class StepOrder
{
    public static int Compare(string a, string b)
    {
        var (ra, na, sa) = Key(a);
        var (rb, nb, sb) = Key(b);
        int c = ra.CompareTo(rb);
        if (c != 0) return c;
        c = na.CompareTo(nb);
        return c != 0 ? c : string.CompareOrdinal(sa, sb);
    }

    private static (int Rank, long Number, string Text) Key(string stepId)
    {
        int dot = stepId.IndexOf('.');
        string s = dot >= 0 ? stepId[(dot + 1)..] : stepId;
        if (s == "batch") return (0, 0, s);
        if (s == "extern") return (1, 0, s);
        if (s == "interactive") return (2, 0, s);
        if (long.TryParse(s, out long n)) return (3, n, s);
        return (4, 0, s);
    }
}
