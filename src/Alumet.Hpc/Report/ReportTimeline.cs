using System.Globalization;
using System.Text;
using Alumet.Hpc.Outputs.Parquet;

namespace Alumet.Hpc.Report;

/// <summary>
/// <c>alumet-report --job N --timeline</c>: per-domain power per period from the job's Parquet files, for a terminal:
/// one line per series with its mean, its highest period and a sparkline, then the counted total (TotalEnergy's
/// domains) of each consumer per period.
/// </summary>
public static class ReportTimeline
{
    public const int MaxPeriods = 40;
    private const string Bars = "▁▂▃▄▅▆▇█";

    public static string Format(string jobId, PowerTimeline t)
    {
        var inv = CultureInfo.InvariantCulture;
        var w = new StringBuilder();
        if (t.Periods == 0 || t.Series.Count == 0)
            return $"job {jobId}: no samples in its Parquet file(s)\n";
        var end = t.PeriodStart(t.Periods);
        w.Append(inv, $"job {jobId}: power per {Span(t.Period)} (Σ energy / Σ time in each period), W, {t.Start:yyyy-MM-dd'T'HH:mm:ss'Z'} to {end:yyyy-MM-dd'T'HH:mm:ss'Z'}\n");
        int dw = Math.Max(6, t.Series.Max(s => s.Domain.Length));
        int cw = Math.Max(8, t.Series.Max(s => s.Consumer.Length));
        w.Append(inv, $"{"domain".PadRight(dw)}  {"consumer".PadRight(cw)}  {"mean",8}  {"max",8}  timeline (▁ = 0, █ = the line's max)\n");
        foreach (var s in t.Series)
        {
            var watts = s.Watts();
            double max = watts.Where(double.IsFinite).DefaultIfEmpty(0).Max();
            w.Append(inv, $"{s.Domain.PadRight(dw)}  {s.Consumer.PadRight(cw)}  {s.MeanW,8:0.0}  {max,8:0.0}  {Sparkline(watts)}\n");
        }

        var totals = t.Series.Where(s => s.Domain == PowerTimeline.CountedTotal).ToList();
        if (totals.Count == 0) return w.ToString();
        w.Append('\n');
        w.Append(inv, $"{"period start (UTC)",-20}");
        foreach (var s in totals) w.Append(inv, $"  {s.Consumer,12}");
        w.Append("   (W, counted domains: package + dram + gpu)\n");
        var columns = totals.Select(s => s.Watts()).ToList();
        for (int i = 0; i < t.Periods; i++)
        {
            w.Append(inv, $"{t.PeriodStart(i):yyyy-MM-dd HH:mm:ss}  ");
            foreach (var c in columns) w.Append(double.IsFinite(c[i]) ? c[i].ToString("0.0", inv).PadLeft(12) : "-".PadLeft(12)).Append("  ");
            w.Length -= 2;
            w.Append('\n');
        }
        return w.ToString();
    }

    /// <summary>One character per period scaled 0..max of the line; a blank where nothing was measured.</summary>
    public static string Sparkline(IReadOnlyList<double> watts)
    {
        double max = watts.Where(double.IsFinite).DefaultIfEmpty(0).Max();
        var sb = new StringBuilder(watts.Count);
        foreach (var v in watts)
        {
            if (!double.IsFinite(v)) { sb.Append(' '); continue; }
            int i = max <= 0 ? 0 : (int)Math.Round(Math.Max(0, v) / max * (Bars.Length - 1));
            sb.Append(Bars[Math.Clamp(i, 0, Bars.Length - 1)]);
        }
        return sb.ToString();
    }

    public static string Span(TimeSpan p) => p.TotalSeconds switch
    {
        < 1 => $"{p.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)} ms",
        < 60 => $"{p.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s",
        < 3600 => $"{p.TotalMinutes.ToString("0.##", CultureInfo.InvariantCulture)} min",
        _ => $"{p.TotalHours.ToString("0.##", CultureInfo.InvariantCulture)} h",
    };
}
