using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Alumet.Hpc.Report;

public enum ReportLayout
{
    /// <summary>sacct's table: right-justified fixed-width columns, a dashed rule, '+' marks a truncated value.</summary>
    Table,
    /// <summary>sacct -p: fields separated by '|', with a trailing '|'.</summary>
    Parsable,
    /// <summary>sacct -P: fields separated by '|', no trailing '|'.</summary>
    Parsable2,
    /// <summary>One JSON document with every field in base units (J, W, s), independent of --format.</summary>
    Json,
}

/// <summary>Renders report lines. Pure: strings in, strings out (golden-tested).</summary>
public static class ReportFormatter
{
    /// <summary>Text for <see cref="ReportLayout.Table"/>, <see cref="ReportLayout.Parsable"/>, <see cref="ReportLayout.Parsable2"/>.</summary>
    public static string Text(IEnumerable<ReportRow> rows, IReadOnlyList<FieldSpec> fields, ReportLayout layout, bool header, ValueStyle style)
    {
        var sb = new StringBuilder();
        if (layout == ReportLayout.Table)
        {
            if (header)
            {
                sb.AppendJoin(' ', fields.Select(f => Cell(f.Field.Name, f))).Append('\n');
                sb.AppendJoin(' ', fields.Select(f => new string('-', f.Width))).Append('\n');
            }
            foreach (var r in rows)
                sb.AppendJoin(' ', fields.Select(f => Cell(f.Field.Value(r, style), f))).Append('\n');
        }
        else
        {
            string end = layout == ReportLayout.Parsable ? "|" : "";
            if (header) sb.AppendJoin('|', fields.Select(f => f.Field.Name)).Append(end).Append('\n');
            foreach (var r in rows)
                sb.AppendJoin('|', fields.Select(f => Escape(f.Field.Value(r, style)))).Append(end).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Notes block printed under a table (and on stderr for parsable output, to keep stdout machine-readable).</summary>
    public static string Notes(IEnumerable<string> notes)
    {
        var list = notes.ToList();
        if (list.Count == 0) return "";
        var sb = new StringBuilder("\n");
        foreach (var n in list) sb.Append(n).Append('\n');
        return sb.ToString();
    }

    /// <summary>sacct pads to the width, right-justified by default; a longer value is cut and ends with '+'.</summary>
    private static string Cell(string value, FieldSpec f)
    {
        if (value.Length > f.Width) value = value[..(f.Width - 1)] + "+";
        return f.LeftJustify ? value.PadRight(f.Width) : value.PadLeft(f.Width);
    }

    /// <summary>A '|' or newline inside a value would break parsable output.</summary>
    private static string Escape(string v) => v.Replace('|', '/').Replace('\n', ' ');

    /// <summary>JSON document: {"jobs":[{... "lines":[...], "notes":[...]}]}; UTC ISO-8601 times, J, W, s.</summary>
    public static string Json(IReadOnlyList<ReportJob> jobs) => Json(jobs.Select(j => (j, j.Lines().ToList())).ToList());

    /// <summary>JSON of the given jobs, each with only the given lines (e.g. one step).</summary>
    public static string Json(IReadOnlyList<(ReportJob Job, List<ReportRow> Lines)> shown)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("unit_energy", "J");
            w.WriteString("unit_power", "W");
            w.WriteString("time_zone", "UTC");
            w.WriteStartArray("jobs");
            foreach (var (j, lines) in shown)
            {
                w.WriteStartObject();
                w.WriteString("job_id", j.JobId);
                w.WriteString("cluster", j.Cluster);
                w.WriteString("scheduler", j.Scheduler);
                w.WriteString("user", j.Total.User);
                w.WriteNumber("uid", j.Total.Uid);
                w.WriteStartArray("lines");
                foreach (var r in lines) Line(w, r);
                w.WriteEndArray();
                w.WriteStartArray("notes");
                foreach (var n in j.Notes) w.WriteStringValue(n);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    private static void Line(Utf8JsonWriter w, ReportRow r)
    {
        w.WriteStartObject();
        w.WriteString("kind", r.Kind switch { ReportRowKind.Job => "job", ReportRowKind.Node => "node", _ => "step" });
        w.WriteString("job_id", r.JobId);
        w.WriteStartArray("nodes");
        foreach (var n in r.Nodes) w.WriteStringValue(n);
        w.WriteEndArray();
        Time(w, "start", r.Start);
        Time(w, "end", r.End);
        w.WriteNumber("elapsed_s", r.ElapsedS);
        w.WriteString("status", r.Status);
        w.WriteString("reason", r.Reason);
        if (r.Measured)
        {
            w.WriteStartObject("energy_j");
            w.WriteNumber("package", r.Energy.PackageJ);
            w.WriteNumber("core", r.Energy.CoreJ);
            w.WriteNumber("uncore", r.Energy.UncoreJ);
            w.WriteNumber("dram", r.Energy.DramJ);
            w.WriteNumber("psys", r.Energy.PsysJ);
            w.WriteNumber("gpu", r.Energy.GpuJ);
            w.WriteNumber("total", r.Energy.TotalJ);
            w.WriteEndObject();
            w.WriteNumber("ave_power_w", r.AvePowerW);
            if (r.MaxPowerW is { } max) w.WriteNumber("max_power_w", max);
            else w.WriteNull("max_power_w");
            Uncertainty(w, r.Uncertainty);
            Carbon(w, r);
        }
        else
        {
            w.WriteNull("energy_j");
            w.WriteNull("ave_power_w");
            w.WriteNull("max_power_w");
            w.WriteNull("total_energy_uncertainty");
            Carbon(w, r);
        }
        w.WriteString("total_energy_domains", "cpu_package+dram+gpu");
        // "rapl=1000,nvml=20" → {"rapl": 1000, "nvml": 20}
        w.WriteStartObject("sampling_hz");
        foreach (var kv in r.Frequency.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = kv.IndexOf('=');
            if (eq > 0 && double.TryParse(kv[(eq + 1)..], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double hz))
                w.WriteNumber(kv[..eq], hz);
        }
        w.WriteEndObject();
        w.WriteStartArray("interfaces");
        foreach (var i in r.Interfaces.Split(',', StringSplitOptions.RemoveEmptyEntries)) w.WriteStringValue(i);
        w.WriteEndArray();
        w.WriteBoolean("estimated", r.Estimated);
        if (r.Estimated) w.WriteString("estimate_model", r.EstimateModel);
        w.WriteBoolean("lower_bound", r.WrapAmbiguous > 0);
        w.WriteNumber("samples", r.Samples);
        w.WriteNumber("wrap_ambiguous_samples", r.WrapAmbiguous);
        w.WriteNumber("read_error_samples", r.ReadErrors);
        w.WriteString("perimeter", r.Perimeter);
        w.WriteStartArray("parquet");
        foreach (var p in r.ParquetPaths) w.WriteStringValue(p);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>docs/uncertainty.md: expanded U with k and confidence, standard components, one-sided missed energy.</summary>
    private static void Uncertainty(Utf8JsonWriter w, Outputs.Uncertainty.EnergyUncertainty u)
    {
        if (!u.Known) { w.WriteNull("total_energy_uncertainty"); return; }
        w.WriteStartObject("total_energy_uncertainty");
        w.WriteNumber("expanded_j", u.ExpandedJ);
        w.WriteNumber("coverage_factor", u.CoverageFactor);
        w.WriteString("confidence", Outputs.Uncertainty.EnergyUncertainty.ConfidenceLabel(u.CoverageFactor));
        w.WriteNumber("standard_j", u.StandardJ);
        w.WriteNumber("interfaces_j", u.InterfacesJ);
        w.WriteNumber("attribution_j", u.AttributionJ);
        w.WriteNumber("random_j", u.RandomJ);
        w.WriteNumber("missed_max_j", u.MissedJ);
        w.WriteString("method", Outputs.Uncertainty.UncertaintyModel.MethodReference);
        w.WriteEndObject();
    }

    /// <summary>docs/carbon.md: null figures were not configured or not computable (carbon_note says why).</summary>
    private static void Carbon(Utf8JsonWriter w, ReportRow r)
    {
        var c = r.Carbon;
        Nullable(w, "facility_energy_j", r.Measured ? c.FacilityEnergyJ : null);
        Nullable(w, "facility_energy_u_j", r.Measured && c.FacilityEnergyJ is not null ? c.FacilityEnergyUJ : null);
        Nullable(w, "co2e_g", r.Measured ? c.Co2eG : null);
        Nullable(w, "co2e_u_g", r.Measured && c.Co2eG is not null ? c.Co2eUG : null);
        w.WriteString("carbon_basis", c.Basis);
        w.WriteString("carbon_note", c.Note);
    }

    private static void Nullable(Utf8JsonWriter w, string name, double? v)
    {
        if (v is { } x) w.WriteNumber(name, x);
        else w.WriteNull(name);
    }

    private static void Time(Utf8JsonWriter w, string name, DateTime? t)
    {
        if (t is { } v) w.WriteString(name, v.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", System.Globalization.CultureInfo.InvariantCulture));
        else w.WriteNull(name);
    }
}
