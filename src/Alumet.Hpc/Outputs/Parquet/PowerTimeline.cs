using System.Runtime.InteropServices;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Outputs.Parquet;

/// <summary>Energy of one (domain, consumer) series per period: power = <see cref="EnergyJ"/> / <see cref="Seconds"/>.</summary>
/// <param name="Domain"><c>cpu_package:0</c>, or <see cref="PowerTimeline.CountedTotal"/> for the sum of the domains that count in TotalEnergy.</param>
/// <param name="Consumer"><c>job:&lt;id&gt;</c>, <c>node</c>, <c>other_jobs</c>, <c>unattributed</c>.</param>
/// <param name="EnergyJ">J per period.</param>
/// <param name="Seconds">Measured time per period (Σ interval of the rows ending in it): 0 where nothing was measured.</param>
public sealed record PowerSeries(string Domain, string Consumer, bool CountsInTotal, double[] EnergyJ, double[] Seconds)
{
    /// <summary>
    /// The domains' series a counted total adds up (<see cref="PowerTimeline.CountedTotal"/>), null for a domain's: the
    /// total's power is the sum of theirs, each over its own time (an NVML row covers the time between the GPU's own
    /// reads, not RAPL's period: README "Timing"); its <see cref="Seconds"/> are its first domain's.
    /// </summary>
    public IReadOnlyList<PowerSeries>? Parts { get; init; }

    /// <summary>W per period (energy-weighted: Σ energy / Σ interval), NaN where nothing was measured.</summary>
    public double[] Watts()
    {
        if (Parts is null) return EnergyJ.Select((e, i) => Seconds[i] > 0 ? e / Seconds[i] : double.NaN).ToArray();
        var sum = new double[EnergyJ.Length];
        Array.Fill(sum, double.NaN);
        foreach (var part in Parts)
        {
            var w = part.Watts();
            for (int i = 0; i < sum.Length; i++)
                if (double.IsFinite(w[i])) sum[i] = double.IsFinite(sum[i]) ? sum[i] + w[i] : w[i];
        }
        return sum;
    }

    public double TotalJ => EnergyJ.Sum();
    public double MeanW => Parts is { } parts ? parts.Sum(p => p.MeanW) : Seconds.Sum() is > 0 and var s ? TotalJ / s : 0;
}

/// <summary>
/// Power per period of every series of one or more job files, read back from Parquet (schema 2, and schema 1 files
/// written before it). Power is energy-weighted over each period — Σ energy / Σ interval of its rows —
/// never per read: at 1 kHz one read's energy aliases with RAPL's ~1 ms update (README "Parquet schema").
/// Streams row group by row group, so memory is the output, not the file.
/// </summary>
public sealed record PowerTimeline(DateTime Start, TimeSpan Period, int Periods, IReadOnlyList<PowerSeries> Series)
{
    public const string CountedTotal = "total";

    public DateTime PeriodStart(int i) => Start + Period * i;

    /// <summary>
    /// Picks a readable period giving at most <paramref name="maxPeriods"/> periods over the span, never shorter than
    /// <paramref name="shortest"/> (a 1 s storage period cannot show 0.5 s periods).
    /// </summary>
    public static TimeSpan AutoPeriod(TimeSpan span, int maxPeriods, TimeSpan shortest)
    {
        double[] steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
        foreach (var s in steps)
            if (span.TotalSeconds / s <= maxPeriods && s >= shortest.TotalSeconds * 0.999) return TimeSpan.FromSeconds(s);
        return TimeSpan.FromSeconds(Math.Ceiling(span.TotalSeconds / maxPeriods / 86400) * 86400);
    }

    /// <summary>Reads <paramref name="files"/> (the nodes of one job): series are per node when there are several.</summary>
    public static async Task<PowerTimeline> ReadAsync(IReadOnlyList<string> files, int maxPeriods, TimeSpan? period = null, CancellationToken ct = default)
    {
        // Pass 1: the time span (files of schema 1 have wrong timestamp statistics, so the rows are read, not the footer).
        DateTime lo = DateTime.MaxValue, hi = DateTime.MinValue;
        // Per series, how many rows have each interval (ms): its median is the series' resolution.
        var intervals = new Dictionary<(string, string), Dictionary<long, long>>();
        foreach (var f in files)
            await foreach (var rows in Read(f, energy: false, ct).ConfigureAwait(false))
            {
                // Each series' histogram looked up once per row group, not per row.
                var histograms = new Dictionary<long, long>[rows.Series.Length];
                for (int s = 0; s < histograms.Length; s++)
                {
                    var key = (rows.Series[s].Domain, rows.Series[s].Consumer);
                    if (!intervals.TryGetValue(key, out var h)) intervals[key] = h = [];
                    histograms[s] = h;
                }
                for (int i = 0; i < rows.Count; i++)
                {
                    var end = End(rows, i);
                    var start = end.AddTicks(-rows.IntervalUs[i] * 10);
                    if (start < lo) lo = start;
                    if (end > hi) hi = end;
                    long ms = (rows.IntervalUs[i] + 500) / 1000;
                    CollectionsMarshal.GetValueRefOrAddDefault(histograms[rows.SeriesOf[i]], ms, out _)++;
                }
            }
        if (lo > hi) return new PowerTimeline(DateTime.UnixEpoch, TimeSpan.FromSeconds(1), 0, []);
        // No shorter than the coarsest series' usual interval (job shares are stored per attribution period even when
        // the node's rows are raw): every period then holds a row of every series. A GPU's rows are left out when other
        // series are there: theirs cover the time between NVML's own reads, a 1 s period's 0.9 to 1.1 s (README "Timing").
        var periodic = intervals.Where(kv => !kv.Key.Item1.StartsWith("gpu:", StringComparison.Ordinal)).Select(kv => kv.Value).ToList();
        long coarsestMs = (periodic.Count > 0 ? periodic : intervals.Values.ToList()).Select(Median).DefaultIfEmpty(0).Max();
        var p = period ?? AutoPeriod(hi - lo, maxPeriods, TimeSpan.FromMilliseconds(coarsestMs));
        int n = Math.Max(1, (int)Math.Ceiling((hi - lo) / p));
        var series = new Dictionary<(string, string), (double[] E, double[] S, bool Counted)>();
        string? Prefix(string f) => files.Count > 1 ? Path.GetFileName(f) : null;
        foreach (var f in files)
        {
            string? node = Prefix(f);
            await foreach (var rows in Read(f, energy: true, ct).ConfigureAwait(false))
            {
                // Each series' arrays looked up once per row group (in the order of their first row, as the rows would).
                var sums = new (double[] E, double[] S)[rows.Series.Length];
                for (int s = 0; s < sums.Length; s++)
                {
                    var one = rows.Series[s];
                    string domain = node is null ? one.Domain : $"{one.Node}/{one.Domain}";
                    sums[s] = Sums(series, (domain, one.Consumer), Counted(one.ResourceKind), n);
                }
                for (int i = 0; i < rows.Count; i++)
                {
                    // The row belongs to the period holding its middle (an interval (start, end] ending on a boundary is the earlier period's).
                    var middle = End(rows, i).AddTicks(-rows.IntervalUs[i] * 5);
                    int b = Math.Clamp((int)((middle - lo) / p), 0, n - 1);
                    double seconds = rows.IntervalUs[i] / 1e6;
                    var (e, sec) = sums[rows.SeriesOf[i]];
                    e[b] += rows.Joules[i];
                    sec[b] += seconds;
                }
            }
        }
        // The counted total per consumer: Σ energy of counted domains; its power is Σ each domain's (PowerSeries.Parts).
        var domains = series.Select(kv => new PowerSeries(kv.Key.Item1, kv.Key.Item2, kv.Value.Counted, kv.Value.E, kv.Value.S)).ToList();
        var totals = domains.Where(s => s.CountsInTotal).GroupBy(s => s.Consumer).Select(g =>
        {
            var e = new double[n];
            foreach (var part in g)
                for (int b = 0; b < n; b++) e[b] += part.EnergyJ[b];
            return new PowerSeries(CountedTotal, g.Key, true, e, (double[])g.First().Seconds.Clone()) { Parts = g.ToList() };
        });
        var list = domains.Concat(totals)
            .OrderBy(s => ConsumerRank(s.Consumer)).ThenBy(s => s.Domain == CountedTotal ? 1 : 0).ThenBy(s => s.Domain, StringComparer.Ordinal)
            .ToList();
        return new PowerTimeline(lo, p, n, list);
    }

    private static long Median(Dictionary<long, long> histogram)
    {
        long half = (histogram.Values.Sum() + 1) / 2, seen = 0;
        foreach (var (ms, n) in histogram.OrderBy(kv => kv.Key))
            if ((seen += n) >= half) return ms;
        return 0;
    }

    private static (double[] E, double[] S) Sums(Dictionary<(string, string), (double[] E, double[] S, bool Counted)> d, (string, string) key, bool counted, int n)
    {
        if (!d.TryGetValue(key, out var v)) d[key] = v = (new double[n], new double[n], counted);
        return (v.E, v.S);
    }

    /// <summary>job shares first, then node, other jobs, unattributed, steps.</summary>
    public static int ConsumerRank(string consumer) => consumer switch
    {
        _ when consumer.StartsWith(SpoolSeries.JobConsumerPrefix, StringComparison.Ordinal) => 0,
        SpoolSeries.NodeConsumer => 1,
        SpoolSeries.OtherJobsConsumer => 2,
        SpoolSeries.UnattributedConsumer => 3,
        _ => 4,
    };

    /// <summary>The rows without their flags; with <paramref name="energy"/> false, their times and series only (the first pass).</summary>
    private static IAsyncEnumerable<ParquetRowGroup> Read(string path, bool energy, CancellationToken ct) =>
        ParquetRows.ReadAsync(path, noFollow: false, energy, flags: false, ct);

    private static DateTime End(ParquetRowGroup rows, int i) => DateTime.UnixEpoch.AddTicks(rows.EndUs[i] * 10);

    private static bool Counted(string kind)
    {
        try { return Core.ResourceKinds.CountsInTotal(Core.ResourceKinds.Parse(kind)); }
        catch (FormatException) { return false; }
    }
}
