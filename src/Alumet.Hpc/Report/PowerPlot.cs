using System.Runtime.InteropServices;
using Alumet.Hpc.Outputs.Parquet;
using ScottPlot;
using SkiaSharp;

namespace Alumet.Hpc.Report;

/// <summary>
/// <c>alumet-report --job N --plot FILE.png|.svg</c>: power per domain over time from the job's Parquet files, the
/// job's share per domain and its total (solid), and the totals of the node, other jobs and unattributed (dashed)
/// where the file has them; totals are over the domains that count in TotalEnergy. Drawn with ScottPlot (SkiaSharp): <c>libSkiaSharp.so</c> and <c>libHarfBuzzSharp.so</c> are loaded
/// from the binary's own directory only, and text uses the DejaVu Sans font embedded in the binary (machines may
/// have no fonts; the report may run setgid, so nothing is read from a path the caller controls).
/// </summary>
public static class PowerPlot
{
    public const int Width = 1200, Height = 650;
    public const string FontName = "DejaVu Sans";
    private const string FontResource = "Alumet.Hpc.Report.DejaVuSans.ttf";
    private static readonly string[] NativeLibraries = ["libSkiaSharp.so", "libHarfBuzzSharp.so"];

    /// <summary>The plot's series: legend text → (seconds since start, W).</summary>
    public sealed record Line(string Label, double[] X, double[] Y, bool Dashed, bool Bold);

    /// <summary>What is drawn: the job's domains and its counted total (solid), the other consumers' counted totals (dashed).</summary>
    public static IReadOnlyList<Line> Lines(PowerTimeline t)
    {
        var lines = new List<Line>();
        foreach (var s in t.Series)
        {
            bool job = PowerTimeline.ConsumerRank(s.Consumer) == 0;
            bool total = s.Domain == PowerTimeline.CountedTotal;
            if (!job && !total) continue;
            if (PowerTimeline.ConsumerRank(s.Consumer) == 4) continue; // steps are parts of the job line
            var watts = s.Watts();
            var x = new List<double>();
            var y = new List<double>();
            for (int i = 0; i < watts.Length; i++)
            {
                if (!double.IsFinite(watts[i])) continue;
                x.Add((t.PeriodStart(i) - t.Start).TotalSeconds + t.Period.TotalSeconds / 2);
                y.Add(watts[i]);
            }
            if (x.Count == 0) continue;
            string label = total ? $"{s.Consumer} (package+dram+gpu)" : $"{s.Consumer} {s.Domain}";
            lines.Add(new Line(label, x.ToArray(), y.ToArray(), Dashed: !job, Bold: total));
        }
        return lines;
    }

    /// <summary>Why the plot cannot be drawn here, or null: the native libraries must sit beside the binary.</summary>
    public static string? Unavailable()
    {
        string dir = AppContext.BaseDirectory;
        foreach (var lib in NativeLibraries)
        {
            string path = Path.Combine(dir, lib);
            if (!File.Exists(path)) path = Path.Combine(dir, "runtimes", "linux-x64", "native", lib); // a dotnet (JIT) run from the build output
            if (!File.Exists(path))
                return $"--plot needs {lib} beside {Path.Combine(dir, "alumet-hpc")} (make publish puts it in out/bin; install it with the binary)";
            if (!NativeLibrary.TryLoad(path, out _)) return $"--plot could not load {path}";
        }
        return null;
    }

    /// <summary>Writes the PNG or SVG (by extension). Returns the number of lines drawn.</summary>
    public static int Save(PowerTimeline t, string jobId, string path)
    {
        RegisterFont();
        var lines = Lines(t);
        var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        int i = 0;
        foreach (var l in lines)
        {
            var sc = plot.Add.ScatterLine(l.X, l.Y, palette.GetColor(i++));
            sc.LegendText = l.Label;
            sc.LineWidth = l.Bold ? 2.5f : 1.5f;
            if (l.Dashed) sc.LinePattern = LinePattern.Dashed;
        }
        plot.Title($"job {jobId}: power per {ReportTimeline.Span(t.Period)} from {t.Start:yyyy-MM-dd HH:mm:ss} UTC");
        plot.XLabel("time since start (s)");
        plot.YLabel("power (W)");
        plot.Axes.SetLimitsY(0, Math.Max(1, lines.SelectMany(l => l.Y).DefaultIfEmpty(0).Max() * 1.1));
        plot.ShowLegend(Alignment.UpperRight);
        if (path.EndsWith(".svg", StringComparison.OrdinalIgnoreCase)) plot.SaveSvg(path, Width, Height);
        else plot.SavePng(path, Width, Height);
        return lines.Count;
    }

    private static bool _registered;

    private static void RegisterFont()
    {
        if (_registered) return;
        using var stream = typeof(PowerPlot).Assembly.GetManifestResourceStream(FontResource)
            ?? throw new InvalidOperationException($"font resource {FontResource} missing from the build");
        var typeface = SKTypeface.FromStream(stream) ?? throw new InvalidDataException("the embedded font does not load");
        Fonts.FontResolvers.Insert(0, new EmbeddedFont(typeface));
        Fonts.Default = FontName;
        Fonts.Sans = FontName;
        Fonts.Monospace = FontName;
        Fonts.Serif = FontName;
        _registered = true;
    }

    /// <summary>Every font request gets the embedded typeface: nothing is looked up on the machine.</summary>
    private sealed class EmbeddedFont(SKTypeface typeface) : IFontResolver
    {
        public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing spacing) => typeface;
        public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic) => typeface;
    }
}
