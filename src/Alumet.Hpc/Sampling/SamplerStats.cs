using System.Text.Json.Serialization;

namespace Alumet.Hpc.Sampling;

/// <summary>What a sampler reports about its own timing at exit (<c>stats.json</c> in the state directory; read by <c>make bench</c>).</summary>
public sealed record SamplerStats(
    double TargetHz, long Ticks, long MissedTicks, double DurationS, double AchievedHz,
    double LatenessP50Us, double LatenessP99Us, double LatenessMaxUs, double LatenessMeanUs,
    double FirstSampleMs, long RecordsWritten);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(SamplerStats))]
internal sealed partial class SamplerStatsJsonContext : JsonSerializerContext;
