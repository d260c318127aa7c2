using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Report;

public enum ReportLayout
{
    /// <summary>sacct's table: right-justified fixed-width columns, a dashed rule, '+' marks a truncated value.</summary>
    Table,
    /// <summary>sacct -p: fields separated by '|' (or --delimiter), with a trailing one.</summary>
    Parsable,
    /// <summary>sacct -P: fields separated by '|' (or --delimiter), no trailing one.</summary>
    Parsable2,
    /// <summary>One JSON document shaped like sacct --json, every value in base units (J, W, s), independent of --format.</summary>
    Json,
}

/// <summary>
/// Renders report lines, one piece at a time so that a listing of any length streams (golden-tested). Pure: strings in,
/// strings out.
/// </summary>
public static class ReportFormatter
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>The header (and, for a table, the dashed rule).</summary>
    public static string Header(IReadOnlyList<FieldSpec> fields, ReportLayout layout, string delimiter = "|")
    {
        var sb = new StringBuilder();
        if (layout == ReportLayout.Table)
        {
            sb.AppendJoin(' ', fields.Select(f => Cell(f.Field.Name, f))).Append('\n');
            sb.AppendJoin(' ', fields.Select(f => new string('-', f.Width))).Append('\n');
        }
        else
        {
            sb.AppendJoin(delimiter, fields.Select(f => f.Field.Name)).Append(layout == ReportLayout.Parsable ? delimiter : "").Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>One line of a table, -p or -P.</summary>
    public static string Line(ReportRow r, IReadOnlyList<FieldSpec> fields, ReportLayout layout, ValueStyle style, string delimiter = "|")
    {
        var sb = new StringBuilder();
        if (layout == ReportLayout.Table) sb.AppendJoin(' ', fields.Select(f => Cell(f.Field.Value(r, style), f)));
        else sb.AppendJoin(delimiter, fields.Select(f => Escape(f.Field.Value(r, style), delimiter))).Append(layout == ReportLayout.Parsable ? delimiter : "");
        return sb.Append('\n').ToString();
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

    /// <summary>A delimiter or newline inside a value would break parsable output.</summary>
    private static string Escape(string v, string delimiter) =>
        v.Replace(delimiter, delimiter == "/" ? "\\" : "/").Replace('\n', ' ');

    // ---- JSON, shaped like sacct --json: {"meta":…, "jobs":[…], "errors":[], "warnings":[]} -------------------------

    public static string JsonStart() =>
        "{\n  \"meta\": {\n    \"plugin\": {\"name\": \"alumet-hpc\"},\n    \"units\": {\"energy\": \"J\", \"power\": \"W\", \"time\": \"s\", \"timestamps\": \"Unix epoch s\"},\n"
        + "    \"total_energy_domains\": \"cpu_package+dram+gpu\"\n  },\n  \"jobs\": [";

    public static string JsonEnd(bool noJob) => (noJob ? "]" : "\n  ]") + ",\n  \"errors\": [],\n  \"warnings\": []\n}\n";

    /// <summary>
    /// One element of jobs[]: sacct's names where sacct has the value (numeric <c>job_id</c>, <c>cluster</c>, <c>user</c>,
    /// <c>nodes</c>, <c>time</c> in epoch seconds, <c>steps[].step.id</c>, energy as <c>tres.consumed.total[]</c> of type
    /// "energy" in whole J); the rest under <c>energy</c>, <c>power</c>, <c>measurement</c>, <c>node_lines</c> (README).
    /// Only the given lines' steps and node lines are included (e.g. -j 1234.batch).
    /// </summary>
    public static string JsonJob(ReportJob job, IReadOnlyList<ReportRow> lines, bool first)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            var t = job.Total;
            w.WriteStartObject();
            if (long.TryParse(job.JobId, NumberStyles.None, Inv, out long id)) w.WriteNumber("job_id", id);
            else w.WriteString("job_id", job.JobId);
            w.WriteString("name", t.JobName); // sacct --json: jobs[].name
            w.WriteString("cluster", job.Cluster);
            w.WriteString("scheduler", job.Scheduler);
            w.WriteString("user", t.User);
            w.WriteNumber("uid", t.Uid);
            w.WriteString("nodes", t.NodeList);
            w.WriteString("run_id", t.RunId);
            Body(w, t);
            w.WriteStartArray("notes");
            foreach (var n in job.Notes) w.WriteStringValue(n);
            w.WriteEndArray();
            w.WriteStartArray("node_lines");
            foreach (var n in lines.Where(l => l.Kind == ReportRowKind.Node))
            {
                w.WriteStartObject();
                w.WriteString("node", n.NodeList);
                w.WriteString("run_id", n.RunId);
                Body(w, n);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("steps");
            foreach (var s in lines.Where(l => l.Kind == ReportRowKind.Step))
            {
                w.WriteStartObject();
                w.WriteStartObject("step");
                w.WriteString("id", s.JobId);
                w.WriteString("name", s.JobId[(s.JobId.IndexOf('.') + 1)..]);
                w.WriteEndObject();
                w.WriteStartObject("nodes");
                w.WriteNumber("count", s.Nodes.Count);
                w.WriteString("range", s.NodeList);
                w.WriteStartArray("list");
                foreach (var n in s.Nodes) w.WriteStringValue(n);
                w.WriteEndArray();
                w.WriteEndObject();
                Body(w, s);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        string text = Encoding.UTF8.GetString(buffer.WrittenSpan);
        return (first ? "\n    " : ",\n    ") + text.Replace("\n", "\n    ");
    }

    /// <summary>time, tres, energy, power and measurement of one line.</summary>
    private static void Body(Utf8JsonWriter w, ReportRow r)
    {
        w.WriteStartObject("time");
        Epoch(w, "start", r.Start);
        Epoch(w, "end", r.End);
        w.WriteNumber("elapsed", (long)Math.Floor(Math.Max(0, r.ElapsedS)));
        w.WriteEndObject();
        w.WriteStartObject("tres");
        w.WriteStartObject("consumed");
        w.WriteStartArray("total");
        if (r.Measured)
        {
            w.WriteStartObject();
            w.WriteString("type", "energy");
            w.WriteString("name", "");
            w.WriteNumber("id", 3); // Slurm's TRES id of energy
            w.WriteNumber("count", (long)Math.Round(r.Energy.TotalJ));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteStartObject("energy");
        foreach (var (name, kind) in Domains) Joules(w, name, r.Has(kind) ? r.Energy[kind] : null);
        Joules(w, "total", r.Measured ? r.Energy.TotalJ : null);
        if (r.Measured && r.WallMeasured) Joules(w, "node_wall", r.Energy.WallJ); // BMC, measured; contains the others, not in total
        w.WriteEndObject();
        if (r.Measured && r.WallModelEnergyJ is { } wall)
        {
            w.WriteStartObject("wall_model_energy"); // the node's calibration model applied to the job: not a measurement
            Joules(w, "value", wall);
            Joules(w, "standard_uncertainty", r.WallModelUncertaintyJ);
            w.WriteString("coverage", "k=1 (about 68 %)");
            w.WriteString("kind", "model");
            w.WriteEndObject();
        }
        w.WriteStartObject("power");
        Joules(w, "average", r.Measured ? r.AvePowerW : null);
        Joules(w, "max", r.Measured ? r.MaxPowerW : null);
        w.WriteEndObject();
        Uncertainty(w, r);
        Carbon(w, r);
        w.WriteStartObject("measurement");
        w.WriteString("status", r.Status);
        w.WriteString("reason", r.Reason);
        w.WriteStartObject("sampling_hz"); // "rapl=1000,nvml=20" → {"rapl": 1000, "nvml": 20}
        foreach (var kv in r.Frequency.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = kv.IndexOf('=');
            if (eq > 0 && double.TryParse(kv[(eq + 1)..], NumberStyles.Float, Inv, out double hz)) w.WriteNumber(kv[..eq], hz);
        }
        w.WriteEndObject();
        w.WriteStartArray("interfaces");
        foreach (var i in r.Interfaces.Split(',', StringSplitOptions.RemoveEmptyEntries)) w.WriteStringValue(i);
        w.WriteEndArray();
        w.WriteBoolean("estimated", r.Estimated);
        if (r.Estimated) w.WriteString("estimate_model", r.EstimateModel);
        w.WriteBoolean("lower_bound", r.LowerBound);
        w.WriteNumber("samples", r.Samples);
        w.WriteNumber("wrap_ambiguous_samples", r.WrapAmbiguous);
        if (r.CgroupGonePeriods > 0) w.WriteNumber("cgroup_gone_periods", r.CgroupGonePeriods);
        w.WriteNumber("read_error_samples", r.ReadErrors);
        w.WriteString("perimeter", r.Perimeter);
        w.WriteEndObject();
        w.WriteStartArray("parquet");
        foreach (var p in r.ParquetPaths) w.WriteStringValue(p);
        w.WriteEndArray();
    }

    /// <summary>docs/uncertainty.md: expanded U with k and confidence, standard components, one-sided missed energy; null when not known.</summary>
    private static void Uncertainty(Utf8JsonWriter w, ReportRow r)
    {
        var u = r.Uncertainty;
        if (!r.Measured || !u.Known) { w.WriteNull("total_energy_uncertainty"); return; }
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

    /// <summary>docs/carbon.md: null figures were not configured or not computable (note says why).</summary>
    private static void Carbon(Utf8JsonWriter w, ReportRow r)
    {
        var c = r.Carbon;
        w.WriteStartObject("carbon");
        Nullable(w, "facility_energy_j", r.Measured ? c.FacilityEnergyJ : null);
        Nullable(w, "facility_energy_u_j", r.Measured && c.FacilityEnergyJ is not null ? c.FacilityEnergyUJ : null);
        Nullable(w, "co2e_g", r.Measured ? c.Co2eG : null);
        Nullable(w, "co2e_u_g", r.Measured && c.Co2eG is not null ? c.Co2eUG : null);
        w.WriteString("basis", c.Basis);
        w.WriteString("note", c.Note);
        w.WriteEndObject();
    }

    private static void Nullable(Utf8JsonWriter w, string name, double? v)
    {
        if (v is { } x) w.WriteNumber(name, x);
        else w.WriteNull(name);
    }

    private static readonly (string Name, ResourceKind Kind)[] Domains =
    [
        ("package", ResourceKind.CpuPackage), ("core", ResourceKind.CpuCores), ("uncore", ResourceKind.Uncore),
        ("dram", ResourceKind.Dram), ("psys", ResourceKind.Psys), ("gpu", ResourceKind.Gpu),
    ];

    private static void Joules(Utf8JsonWriter w, string name, double? v)
    {
        if (v is { } x) w.WriteNumber(name, Math.Round(x, 6));
        else w.WriteNull(name);
    }

    private static void Epoch(Utf8JsonWriter w, string name, DateTime? t)
    {
        if (t is { } v) w.WriteNumber(name, (long)Math.Floor((v.ToUniversalTime() - DateTime.UnixEpoch).TotalSeconds));
        else w.WriteNull(name);
    }
}
