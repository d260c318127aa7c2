using Alumet.Hpc.Core;
using Parquet;
using Parquet.Schema;
using static Alumet.Hpc.Outputs.Parquet.ThriftCompact;

namespace Alumet.Hpc.Outputs.Parquet;

public enum RepairOutcome { Repaired, AlreadyCorrect, Skipped, Failed }

/// <summary>What <see cref="ParquetRepair"/> did to one file, in words for the command's output.</summary>
public sealed record RepairResult(string Path, RepairOutcome Outcome, string Detail);

/// <summary>
/// Fixes the timestamp statistics of files written before schema 2 (see <see cref="ParquetFooter"/> for the bug):
/// min/max are recomputed from the data of each row group and written into the footer, and into the page header
/// when the chunk has one data page (Parquet.Net writes one per chunk). The data is not touched. The file is
/// repaired on a copy in the same directory that gets the original's owner and mode, synced, then renamed over it.
/// </summary>
public static class ParquetRepair
{
    public const string TimestampColumn = "timestamp";
    public const string RepairedKey = "statistics_repaired_by";

    // PageHeader: 1 type, 3 compressed_page_size, 5 data_page_header (5 statistics), 8 data_page_header_v2 (8 statistics).
    private const short PhType = 1, PhCompressedSize = 3, PhDataV1 = 5, PhDataV2 = 8, DphStatistics = 5, Dph2Statistics = 8;
    private const long PageData = 0, PageDataV2 = 3;
    private const short CmTotalCompressedSize = 7;

    /// <summary>Parquet files under a directory (recursively) or the file itself; symbolic links are never followed.</summary>
    public static IEnumerable<string> Files(string fileOrDirectory)
    {
        var info = new FileInfo(fileOrDirectory);
        if (info.LinkTarget is not null) yield break;
        if (!Directory.Exists(fileOrDirectory))
        {
            yield return fileOrDirectory;
            yield break;
        }
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true };
        foreach (var f in Directory.EnumerateFiles(fileOrDirectory, "*.parquet", options).Order(StringComparer.Ordinal))
            yield return f;
    }

    public static async Task<RepairResult> RepairAsync(string path, CancellationToken ct = default)
    {
        string tmp = path + ".repair.tmp";
        try
        {
            if (new FileInfo(path).LinkTarget is not null) return new(path, RepairOutcome.Skipped, "a symbolic link: not followed");
            var correct = await TimestampRangesAsync(path, ct).ConfigureAwait(false);
            if (correct is null) return new(path, RepairOutcome.Skipped, $"no INT64 TIMESTAMP(MICROS) column '{TimestampColumn}'");

            ParquetFooter footer;
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
                footer = ParquetFooter.Read(fs);
            var chunks = footer.ColumnChunks(TimestampColumn).ToList();
            if (chunks.Count != correct.Count) return new(path, RepairOutcome.Failed, "row group count differs between footer and data");
            int wrong = 0;
            for (int i = 0; i < chunks.Count; i++)
                if (correct[i] is { } c && ParquetFooter.Int64Statistics(chunks[i]) != c) wrong++;
            if (wrong == 0) return new(path, RepairOutcome.AlreadyCorrect, $"{chunks.Count} row group(s), statistics equal the data");

            File.Copy(path, tmp, overwrite: true);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite); // the original may be 0400
            int pagesFixed = 0;
            using (var fs = new FileStream(tmp, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
            {
                var copy = ParquetFooter.Read(fs);
                var copyChunks = copy.ColumnChunks(TimestampColumn).ToList();
                for (int i = 0; i < copyChunks.Count; i++)
                {
                    if (correct[i] is not { } c) continue;
                    ParquetFooter.SetInt64Statistics(ParquetFooter.StatisticsOf(copyChunks[i]), c.Min, c.Max);
                    if (FixPageHeader(fs, copyChunks[i], c.Min, c.Max)) pagesFixed++;
                }
                copy.SetKeyValue(RepairedKey, $"alumet-hpc {ToolInfo.Version}");
                copy.WriteTo(fs);
            }
            KeepOwnerAndMode(path, tmp);
            File.Move(tmp, path, overwrite: true);
            return new(path, RepairOutcome.Repaired,
                $"timestamp statistics fixed in {wrong} of {chunks.Count} row group(s) (page headers: {pagesFixed})");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or NotSupportedException)
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            // The line names the file already: .NET's "Access to the path '...' is denied." named it a second time.
            return new(path, RepairOutcome.Failed, e is UnauthorizedAccessException
                ? "permission denied (run it as root, or as the file's owner)" : e.Message.Split('\n')[0].Trim());
        }
    }

    /// <summary>Min/max of the timestamp (µs since the epoch) in each row group (null for an empty one), or null without such a column.</summary>
    private static async Task<List<(long Min, long Max)?>?> TimestampRangesAsync(string path, CancellationToken ct)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (!ParquetFooter.Read(fs).IsTimestampMicros(TimestampColumn)) return null;
        fs.Position = 0;
        await using var reader = await ParquetReader.CreateAsync(fs, cancellationToken: ct).ConfigureAwait(false);
        var field = reader.Schema.DataFields.FirstOrDefault(f => f.Name == TimestampColumn);
        if (field is null) return null; // the footer said TIMESTAMP(MICROS) INT64: its values are µs, read as such
        var ranges = new List<(long, long)?>();
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var rg = reader.OpenRowGroupReader(g);
            int n = checked((int)rg.RowCount);
            long min = long.MaxValue, max = long.MinValue;
            var asLong = ParquetRows.TimestampAsInt64(field);
            if (field.IsNullable)
            {
                var values = new long?[n];
                await rg.ReadAsync<long>(asLong, values.AsMemory(), null, ct).ConfigureAwait(false);
                foreach (var v in values) if (v is { } d) Track(d, ref min, ref max);
            }
            else
            {
                var values = new long[n];
                await rg.ReadAsync<long>(asLong, values.AsMemory(), null, ct).ConfigureAwait(false);
                foreach (var d in values) Track(d, ref min, ref max);
            }
            ranges.Add(min <= max ? (min, max) : null);
        }
        return ranges;

        static void Track(long v, ref long min, ref long max)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }
    }

    /// <summary>Rewrites the statistics of the chunk's only data page in place (same encoded length). False when not possible.</summary>
    private static bool FixPageHeader(FileStream fs, TStruct columnMeta, long min, long max)
    {
        long start = ParquetFooter.FirstPageOffset(columnMeta);
        long size = columnMeta.Int(CmTotalCompressedSize) ?? 0;
        if (start <= 0 || size <= 0 || start + size > fs.Length) return false;
        var bytes = new byte[size];
        fs.Position = start;
        fs.ReadExactly(bytes);
        var dataPages = new List<(int Offset, int Length, TStruct Header)>();
        int pos = 0;
        while (pos < bytes.Length)
        {
            int at = pos;
            var header = ReadStruct(bytes, ref pos);
            long type = header.Int(PhType) ?? -1;
            if (type is PageData or PageDataV2) dataPages.Add((at, pos - at, header));
            pos += checked((int)(header.Int(PhCompressedSize) ?? throw new InvalidDataException("page header without size")));
        }
        if (dataPages.Count != 1) return false;
        var (offset, length, h) = dataPages[0];
        var stats = h.Struct(PhDataV1)?.Struct(DphStatistics) ?? h.Struct(PhDataV2)?.Struct(Dph2Statistics);
        if (stats is null) return false;
        ParquetFooter.SetInt64Statistics(stats, min, max);
        var encoded = Write(h);
        if (encoded.Length != length) return false; // would move the data: the footer's statistics are what readers prune on
        fs.Position = start + offset;
        fs.Write(encoded);
        return true;
    }

    private static void KeepOwnerAndMode(string original, string copy)
    {
        if (OperatingSystem.IsWindows()) return;
        File.SetUnixFileMode(copy, File.GetUnixFileMode(original));
        if (Native.Libc.StatLink(original) is { } o && Native.Libc.StatLink(copy)?.Owner != o.Owner && Native.Libc.chown(copy, (int)o.Uid, (int)o.Gid) != 0)
            throw new IOException($"cannot give the repaired copy to uid {o.Uid} gid {o.Gid}: run as root or as the file's owner");
    }
}
