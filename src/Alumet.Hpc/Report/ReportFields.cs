using System.Globalization;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Report;

/// <summary>How values are printed.</summary>
/// <param name="NoConvert">Print energies in J and powers in W without K/M/G prefixes (sacct --noconvert).</param>
/// <param name="Unit">sacct --units: every energy and power in this SI step ('K' = 1000), with two decimals; null = automatic.</param>
/// <param name="Zone">Zone of printed times (local time, as sacct; UTC with --utc); null = UTC.</param>
public sealed record ValueStyle(bool NoConvert, char? Unit = null, TimeZoneInfo? Zone = null);

/// <summary>One selectable column (sacct-style name, default width, right-justified value).</summary>
public sealed record ReportField(string Name, int Width, Func<ReportRow, ValueStyle, string> Value);

/// <summary>A field chosen by --format, with its width and justification (<c>JobID%20</c>, <c>Node%-15</c>).</summary>
public sealed record FieldSpec(ReportField Field, int Width, bool LeftJustify);

/// <summary>The fields of alumet-report, named like sacct's (case-insensitive).</summary>
public static class ReportFields
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static readonly IReadOnlyList<ReportField> All =
    [
        new("JobID", 12, (r, _) => r.JobId),
        new("JobName", 10, (r, _) => r.JobName), // already Untrusted-clean (ReportBuilder)
        new("Cluster", 10, (r, _) => r.Cluster),
        new("User", 9, (r, _) => r.User),
        new("UID", 6, (r, _) => r.Uid.ToString(Inv)),
        new("NodeList", 15, (r, _) => r.NodeList),
        new("NNodes", 6, (r, _) => r.Nodes.Count.ToString(Inv)),
        new("RunID", 19, (r, _) => r.RunId), // a start-time run id (yyyyMMddTHHmmssfffZ, Jobs/RunId.cs) whole
        new("Start", 19, (r, s) => Time(r.Start, s)),
        new("End", 19, (r, s) => Time(r.End, s)),
        new("Elapsed", 10, (r, _) => r.Start is null && r.ElapsedS == 0 ? "" : Elapsed(r.ElapsedS)),
        new("ElapsedRaw", 10, (r, _) => r.Start is null && r.ElapsedS == 0 ? "" : ((long)Math.Floor(Math.Max(0, r.ElapsedS))).ToString(Inv)),
        new("PackageEnergy", 13, (r, s) => Energy(r, ResourceKind.CpuPackage, s)),
        new("CoreEnergy", 10, (r, s) => Energy(r, ResourceKind.CpuCores, s)),
        new("UncoreEnergy", 12, (r, s) => Energy(r, ResourceKind.Uncore, s)),
        new("DramEnergy", 10, (r, s) => Energy(r, ResourceKind.Dram, s)),
        new("PsysEnergy", 10, (r, s) => Energy(r, ResourceKind.Psys, s)),
        new("GpuEnergy", 10, (r, s) => Energy(r, ResourceKind.Gpu, s)),
        new("TotalEnergy", 11, (r, s) => r.Measured ? Scaled(r.Energy.TotalJ, 6, s) : ""),
        new("ConsumedEnergy", 14, (r, s) => r.Measured ? Scaled(r.Energy.TotalJ, 6, s) : ""),
        new("ConsumedEnergyRaw", 17, (r, _) => r.Measured ? Raw(r.Energy.TotalJ, 6) : ""),
        new("WallEnergy", 10, (r, s) => r.Measured && r.WallMeasured ? Scaled(r.Energy.WallJ, 6, s) : ""),
        new("WallModelEnergy", 17, (r, s) => r.Measured && r.WallModelEnergyJ is { } e
            ? $"{Scaled(e, 6, s)}±{Scaled(r.WallModelUncertaintyJ, 6, s)}" : ""),
        // docs/uncertainty.md: expanded uncertainty (k in the notes and --json), and the one-sided missed energy.
        new("TotalEnergyU", 12, (r, s) => r.Measured && r.Uncertainty.Known ? Scaled(r.Uncertainty.ExpandedJ, 6, s) : ""),
        new("MissedEnergy", 12, (r, s) => r.Measured && r.Uncertainty.Known ? Scaled(r.Uncertainty.MissedJ, 6, s) : ""),
        // docs/carbon.md: empty when not configured or not computable (the notes say why). CO2e in g (1.23K = 1.23 kg).
        new("FacilityEnergy", 14, (r, s) => r.Measured && r.Carbon.FacilityEnergyJ is { } f ? Scaled(f, 6, s) : ""),
        new("FacilityEnergyU", 15, (r, s) => r.Measured && r.Carbon.FacilityEnergyJ is not null && r.Carbon.FacilityEnergyUJ is { } f ? Scaled(f, 6, s) : ""),
        new("PUE", 5, (r, _) => r.Measured && Outputs.Carbon.FacilityCarbon.EffectivePue(r.Carbon.FacilityEnergyJ, r.Energy.TotalJ) is { } p ? p.ToString("0.00", Inv) : ""),
        new("CO2e", 9, (r, s) => r.Measured && r.Carbon.Co2eG is { } g ? Scaled(g, 3, s) : ""),
        new("CO2eU", 9, (r, s) => r.Measured && r.Carbon.Co2eG is not null && r.Carbon.Co2eUG is { } g ? Scaled(g, 3, s) : ""),
        new("CarbonIntensity", 15, (r, _) => r.Measured &&
            Outputs.Carbon.FacilityCarbon.EffectiveIntensity(r.Carbon.Co2eG, r.Carbon.FacilityEnergyJ, r.Energy.TotalJ) is { } i ? i.ToString("0.0", Inv) : ""),
        new("AvePower", 9, (r, s) => r.Measured ? Scaled(r.AvePowerW, 2, s) : ""),
        new("MaxPower", 9, (r, s) => r.Measured && r.MaxPowerW is { } w ? Scaled(w, 2, s) : ""),
        new("Frequency", 17, (r, _) => r.Frequency),
        new("Interface", 28, (r, _) => r.InterfaceLabel),
        new("Estimated", 9, (r, _) => r.Estimated ? "yes" : "no"),
        new("Status", 12, (r, _) => r.Status),
        new("Reason", 20, (r, _) => r.Reason),
        new("Samples", 8, (r, _) => r.Samples.ToString(Inv)),
        new("LowerBound", 10, (r, _) => r.LowerBound ? "yes" : "no"),
        new("Perimeter", 30, (r, _) => r.Perimeter),
        new("Parquet", 40, (r, _) => string.Join(',', r.ParquetPaths)),
    ];

    /// <summary>
    /// Text a user chose (job names, echoed arguments) made safe to print: every control character (C0, DEL, C1: terminal
    /// escapes, newlines, tabs) and every invisible format character (bidirectional overrides, zero-width) becomes '?',
    /// as does a lone surrogate. The delimiter of -p/-P is replaced where lines are written (ReportFormatter).
    /// </summary>
    public static string Untrusted(string s)
    {
        int i = 0;
        while (i < s.Length && Safe(s, i)) i++;
        if (i == s.Length) return s;
        var chars = s.ToCharArray();
        for (; i < chars.Length; i++)
            if (!Safe(s, i)) chars[i] = '?';
        return new string(chars);

        static bool Safe(string s, int i)
        {
            char c = s[i];
            if (char.IsHighSurrogate(c)) return i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]);
            if (char.IsLowSurrogate(c)) return i > 0 && char.IsHighSurrogate(s[i - 1]);
            return !char.IsControl(c) && CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.Format;
        }
    }

    /// <summary>sacct -e: the field names, four to a line in 20-character columns.</summary>
    public static string HelpFormat()
    {
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < All.Count; i++)
            sb.Append(i % 4 == 3 || i == All.Count - 1 ? All[i].Name + "\n" : All[i].Name.PadRight(20));
        return sb.ToString();
    }

    /// <summary>--units: K, M, G, T or P (case-insensitive).</summary>
    /// <exception cref="FormatException">Anything else.</exception>
    public static char? ParseUnit(string? unit) => unit switch
    {
        null => null,
        { Length: 1 } u when "KMGTP".Contains(char.ToUpperInvariant(u[0])) => char.ToUpperInvariant(u[0]),
        _ => throw new FormatException($"invalid --units '{ReportCommand.Printable(unit)}' (use K, M, G, T or P)"),
    };

    /// <summary>sacct spellings and short forms accepted as well.</summary>
    private static readonly Dictionary<string, string> Aliases = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Node"] = "NodeList",
        ["Nodes"] = "NodeList",
        ["Energy"] = "TotalEnergy",
        ["Interfaces"] = "Interface",
        ["State"] = "Status",
        ["Freq"] = "Frequency",
    };

    public const string DefaultFormat = "JobID,User,NodeList,Elapsed,PackageEnergy,DramEnergy,GpuEnergy,TotalEnergy,TotalEnergyU,AvePower,MaxPower,Interface,Status";

    public static ReportField? Find(string name)
    {
        if (Aliases.TryGetValue(name, out var canonical)) name = canonical;
        return All.FirstOrDefault(f => string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Parses a --format list: <c>JobID%20,user,TotalEnergy</c>.</summary>
    /// <exception cref="FormatException">Unknown field or bad width; the message is one line for the user.</exception>
    public static IReadOnlyList<FieldSpec> Parse(string format)
    {
        var specs = new List<FieldSpec>();
        foreach (var raw in format.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            string name = raw;
            int? width = null;
            bool left = false;
            int pct = raw.IndexOf('%');
            if (pct >= 0)
            {
                name = raw[..pct];
                string w = raw[(pct + 1)..];
                if (w.StartsWith('-')) { left = true; w = w[1..]; }
                if (!int.TryParse(w, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1 || n > 1000)
                    throw new FormatException($"bad width in --format field '{ReportCommand.Printable(raw)}' (expected e.g. JobID%20)");
                width = n;
            }
            var field = Find(name) ?? throw new FormatException(
                $"unknown --format field '{ReportCommand.Printable(name)}' (known: {string.Join(",", All.Select(f => f.Name))})");
            specs.Add(new FieldSpec(field, width ?? field.Width, left));
        }
        if (specs.Count == 0) throw new FormatException("--format needs at least one field");
        return specs;
    }

    /// <summary>sacct's time format in the style's zone (local time, as sacct; UTC with --utc).</summary>
    public static string Time(DateTime? t, ValueStyle style) =>
        t is { } v ? TimeZoneInfo.ConvertTimeFromUtc(DateTime.SpecifyKind(v.ToUniversalTime(), DateTimeKind.Utc), style.Zone ?? TimeZoneInfo.Utc)
            .ToString("yyyy-MM-dd'T'HH:mm:ss", Inv) : "";

    /// <summary>sacct's elapsed format: [D-]HH:MM:SS (whole seconds, truncated).</summary>
    public static string Elapsed(double seconds)
    {
        long s = (long)Math.Floor(Math.Max(0, seconds));
        long d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
        return d > 0 ? $"{d}-{h:00}:{m:00}:{sec:00}" : $"{h:00}:{m:00}:{sec:00}";
    }

    /// <summary>A domain that was not measured prints blank, not 0 (sacct).</summary>
    private static string Energy(ReportRow r, ResourceKind kind, ValueStyle s) => r.Has(kind) ? Scaled(r.Energy[kind], 6, s) : "";

    /// <summary>--noconvert: plain J/W; --units: that SI step with two decimals; else automatic SI prefixes.</summary>
    private static string Scaled(double v, int rawDecimals, ValueStyle s)
    {
        if (s.NoConvert) return Raw(v, rawDecimals);
        if (s.Unit is { } u) return (v / Math.Pow(1000, "KMGTP".IndexOf(u) + 1)).ToString("0.00", Inv) + u;
        return SiPrefixed(v);
    }

    /// <summary>Plain number without prefix, at most <paramref name="decimals"/> decimals (µJ resolution for energies).</summary>
    public static string Raw(double v, int decimals) =>
        Math.Round(v, decimals).ToString(decimals switch { 6 => "0.######", 3 => "0.###", _ => "0.##" }, Inv);

    /// <summary>
    /// sacct-like unit conversion with SI steps of 1000 (joules and watts are SI): 950 → "950", 1234 → "1.23K",
    /// 2500000 → "2.50M"; a non-integral value keeps two decimals ("12.35"), like sacct's convert_num_unit.
    /// </summary>
    public static string SiPrefixed(double v)
    {
        const string prefixes = "KMGTPE";
        int i = -1;
        double x = v;
        while (Math.Abs(x) >= 999.995 && i < prefixes.Length - 1)
        {
            x /= 1000;
            i++;
        }
        string num = x == Math.Floor(x) ? x.ToString("0", Inv) : x.ToString("0.00", Inv);
        return i < 0 ? num : num + prefixes[i];
    }
}
