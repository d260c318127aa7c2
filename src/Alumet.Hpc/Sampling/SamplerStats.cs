using System.Text.Json.Serialization;

namespace Alumet.Hpc.Sampling;

/// <summary>What a sampler reports about its own timing at exit (<c>stats.json</c> in the state directory; read by <c>make bench</c>).</summary>
/// <param name="FirstSampleMs">From the bench's spawn to the end of the first read of every counter: the baseline that the
/// job's energy counts from (bench/c_reader.c stamps the same read: its prime).</param>
/// <param name="FirstTickMs">From the spawn to the first read after it: the tick thread's first at a tick rate (the first
/// stored reading at raw storage), else the first snapshot.</param>
/// <param name="FirstSampleCpuMs">The process's CPU time (all threads, getrusage) at the first sample: less sensitive to
/// the machine's load than the wall figure.</param>
public sealed record SamplerStats(
    double TargetHz, long Ticks, long MissedTicks, double DurationS, double AchievedHz,
    double LatenessP50Us, double LatenessP99Us, double LatenessMaxUs, double LatenessMeanUs,
    double FirstSampleMs, double FirstTickMs, double FirstSampleCpuMs, long RecordsWritten);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(SamplerStats))]
internal sealed partial class SamplerStatsJsonContext : JsonSerializerContext;
