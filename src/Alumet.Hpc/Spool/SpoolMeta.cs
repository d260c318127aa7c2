using System.Text.Json.Serialization;

namespace Alumet.Hpc.Spool;

/// <summary>
/// Everything a reader of the spool needs besides the records: who, where, how it was measured.
/// Written atomically as <c>meta.json</c> beside <c>spool.bin</c> when the spool opens, and again at the flush that first
/// stores a new series or follows a change of the label (an exec's first shared period), before that flush's records.
/// A node day spool lists its series in <see cref="SeriesFile"/> instead, appended to (<see cref="SeriesCatalogue"/>).
/// </summary>
public sealed class SpoolMeta
{
    public int FormatVersion { get; set; } = 1;
    public string ToolVersion { get; set; } = "";
    public string Scheduler { get; set; } = "";
    public string Cluster { get; set; } = "";
    public string JobId { get; set; } = "";
    /// <summary>Which run of the job (Jobs.RunId): the SLUID, else the start time. Empty in spools of older versions.</summary>
    public string RunId { get; set; } = "";
    /// <summary>The job's name as the scheduler gave it (JobIdentity.JobName); empty when unknown or in older spools.</summary>
    public string JobName { get; set; } = "";
    public string User { get; set; } = "";
    public int Uid { get; set; } = -1;
    public string Node { get; set; } = "";
    /// <summary>Sampler start, Unix ns.</summary>
    public long StartWallNs { get; set; }
    /// <summary>Per-source read rates, e.g. {"rapl": 1000, "estimate": 10}.</summary>
    public Dictionary<string, double> SourceHz { get; set; } = new();
    /// <summary>Period of stored records in ms; 0 = raw (every read).</summary>
    public int StoragePeriodMs { get; set; }
    public int AttributionPeriodMs { get; set; }
    /// <summary>"cgroup-cpu-time" or "exclusive".</summary>
    public string AttributionMode { get; set; } = "";
    /// <summary>Human-readable perimeter and method note, reproduced in reports and Parquet metadata.</summary>
    public string Perimeter { get; set; } = "";
    /// <summary>Name of the estimate model when the estimate source is used, else empty.</summary>
    public string EstimateModel { get; set; } = "";
    public List<SpoolSeries> Series { get; set; } = new();

    /// <summary>
    /// Null: <see cref="Series"/> is every series. Else the file beside meta.json (<see cref="SeriesCatalogue.FileName"/>)
    /// whose lines are the series after those <see cref="Series"/> lists, in id order (a node day spool: every job adds
    /// its own, and meta.json rewritten whole for each grew with the day). Left out of meta.json when null.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? SeriesFile { get; set; }

    /// <summary>This metadata as meta.json holds it when its series are in <see cref="SeriesFile"/>: without them.</summary>
    internal SpoolMeta WithoutSeries()
    {
        var header = (SpoolMeta)MemberwiseClone();
        header.Series = [];
        return header;
    }
}

/// <summary>One stored series: a channel's energy seen by one consumer.</summary>
public sealed class SpoolSeries
{
    /// <summary>The consumer of a counter's reads, whole: the node's energy that every split divides.</summary>
    public const string NodeConsumer = "node";
    /// <summary>The consumer of a split's remainder: what no job's share covers (README "Parquet schema": node = Σ jobs + unattributed).</summary>
    public const string UnattributedConsumer = "unattributed";
    /// <summary>The consumer of the other jobs' shares taken together (README "Parquet schema": node = Σ job:* + other_jobs + unattributed).</summary>
    public const string OtherJobsConsumer = "other_jobs";
    /// <summary>What a job's share's consumer starts with: <see cref="JobConsumer"/>.</summary>
    public const string JobConsumerPrefix = "job:";

    /// <summary>The consumer of job <paramref name="jobId"/>'s share: <c>job:&lt;id&gt;</c>.</summary>
    public static string JobConsumer(string jobId) => JobConsumerPrefix + jobId;

    /// <summary><see cref="NodeConsumer"/> (the whole counter), <see cref="JobConsumer"/>, <see cref="OtherJobsConsumer"/>, <see cref="UnattributedConsumer"/>.</summary>
    public string Consumer { get; set; } = "";
    /// <summary>Resource kind wire name (<c>cpu_package</c>, <c>dram</c>, <c>gpu</c> ...).</summary>
    public string ResourceKind { get; set; } = "";
    public string ResourceId { get; set; } = "";
    /// <summary>Interface wire name (<c>powercap</c>, <c>estimate</c>, <c>nvml-energy-counter</c> ...).</summary>
    public string Interface { get; set; } = "";
    public double JoulesPerUnit { get; set; }
    public string Label { get; set; } = "";
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(SpoolMeta))]
[JsonSerializable(typeof(SpoolSeries))]
internal sealed partial class SpoolJsonContext : JsonSerializerContext;
