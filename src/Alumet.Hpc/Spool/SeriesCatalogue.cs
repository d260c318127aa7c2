using System.Buffers;
using System.Text.Json;

namespace Alumet.Hpc.Spool;

/// <summary>
/// A node day spool's series, one JSON object a line in id order, appended at the flush that first stores each
/// (<see cref="SpoolMeta.SeriesFile"/>): a flush costs the new series only, however many jobs the day has had, where
/// meta.json listing all of them was rewritten whole (2436 series, 541 KB, in a lab day). Lines reach the file before
/// any record names them (<see cref="SpoolWriter.Flush"/>), so a crash can leave only a line without records, or a torn
/// last line (no newline yet) whose series no record names: readers skip it, and the next writer cuts it off before
/// appending.
/// </summary>
public static class SeriesCatalogue
{
    public const string FileName = "series.jsonl";

    /// <summary>
    /// The series of <paramref name="path"/>'s complete lines; <paramref name="complete"/> their length in bytes (where a
    /// writer appends next). A complete line that is not a series is damage, not a crash: refused, never skipped (the
    /// ids of the lines after it would shift).
    /// </summary>
    public static List<SpoolSeries> Read(string path, out long complete)
    {
        byte[] bytes = File.ReadAllBytes(path);
        var series = new List<SpoolSeries>();
        int at = 0;
        while (bytes.AsSpan(at).IndexOf((byte)'\n') is int end and >= 0)
        {
            SpoolSeries? s;
            try { s = JsonSerializer.Deserialize(bytes.AsSpan(at, end), SpoolJsonContext.Default.SpoolSeries); }
            catch (JsonException e) { throw new InvalidDataException($"{path}: line {series.Count + 1} is not a series ({e.Message})", e); }
            series.Add(s ?? throw new InvalidDataException($"{path}: line {series.Count + 1} is not a series (null)"));
            at += end + 1;
        }
        complete = at;
        return series;
    }

    /// <summary>Series [<paramref name="from"/>, <paramref name="to"/>) of <paramref name="series"/> as lines into <paramref name="into"/>.</summary>
    internal static void Write(List<SpoolSeries> series, int from, int to, IBufferWriter<byte> into, Utf8JsonWriter json)
    {
        for (int i = from; i < to; i++)
        {
            json.Reset(into);
            JsonSerializer.Serialize(json, series[i], SpoolJsonContext.Default.SpoolSeries);
            json.Flush();
            into.Write("\n"u8);
        }
    }
}
