using Microsoft.Win32.SafeHandles;
using Parquet;
using Parquet.Schema;

namespace Alumet.Hpc.Outputs.Parquet;

/// <summary>
/// One row group of an alumet-hpc Parquet file: the columns its readers need (the timeline, the conservation check),
/// whatever the schema version (README "Parquet schema").
/// </summary>
/// <param name="EndUs">End of each row's interval, µs since the Unix epoch.</param>
/// <param name="EnergyRaw">The exact integer per row in the counter's unit (schema 2); null for schema 1 files.</param>
/// <param name="Joules">Energy per row, J (<c>energy_raw × joules_per_unit</c>, or schema 1's double).</param>
/// <param name="Flags">SpoolFlags per row (0 when the file has no flags column).</param>
/// <param name="Interface">Each row's measurement interface (<c>powercap</c>, <c>nvml-energy-counter</c>...), only for the row
/// groups the reader asked it of (<see cref="ParquetRows.ReadAsync"/>); null otherwise, and empty strings in a file
/// without the column.</param>
public sealed record ParquetRowGroup(int Count, long[] EndUs, long[] IntervalUs, string[] ResourceKind, string[] ResourceId,
    string[] Consumer, string[] Node, long[]? EnergyRaw, double[] Joules, int[] Flags, string[]? Interface = null)
{
    public string Domain(int i) => $"{ResourceKind[i]}:{ResourceId[i]}";
}

/// <summary>Streams an alumet-hpc Parquet file row group by row group: memory is one row group, not the file.</summary>
public static class ParquetRows
{
    /// <summary>
    /// Opens <paramref name="path"/> for reading without following a symbolic link, in its last component (O_NOFOLLOW)
    /// nor on the way (the opened file's kernel name must be the path itself: give a path without links, see
    /// <see cref="RealPath"/>), and only when it is a regular file (a FIFO planted under a .parquet name would block a
    /// reader running as root).
    /// </summary>
    /// <exception cref="IOException">A sentence: the path is a link, not a regular file, or cannot be opened.</exception>
    public static FileStream OpenNoFollow(string path)
    {
        if (OperatingSystem.IsWindows()) return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        const int ONonBlock = 0x800, ELoop = 40;
        int fd = Native.Libc.open(path, Native.Libc.O_RDONLY | Native.Libc.O_NOFOLLOW | Native.Libc.O_CLOEXEC | ONonBlock);
        if (fd < 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            throw new IOException(errno == ELoop ? "a symbolic link: not followed"
                : $"cannot open it ({new System.ComponentModel.Win32Exception(errno).Message})");
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        const uint TypeMask = 0xF000, Regular = 0x8000;
        if (Native.Libc.FileOwner(handle) is not var (mode, _, _) || (mode & TypeMask) != Regular)
        {
            handle.Dispose();
            throw new IOException("not a regular file");
        }
        // A directory on the way swapped for a link after the caller listed it: the file opened is not the one named.
        if (new FileInfo($"/proc/self/fd/{fd}").LinkTarget is { } opened && opened != Path.GetFullPath(path))
        {
            handle.Dispose();
            throw new IOException($"reached through a symbolic link (it is {opened}): not followed");
        }
        return new FileStream(handle, FileAccess.Read, 1 << 16);
    }

    /// <summary>
    /// The path with every symbolic link resolved (the kernel's name of the opened file or directory), or null when it
    /// cannot be opened: a tree is then listed and its files opened under this name, so that any link met later is one
    /// planted meanwhile.
    /// </summary>
    public static string? RealPath(string path)
    {
        if (OperatingSystem.IsWindows()) return Path.GetFullPath(path);
        const int OPath = 0x200000;
        int fd = Native.Libc.open(path, OPath | Native.Libc.O_CLOEXEC);
        if (fd < 0) return null;
        try { return new FileInfo($"/proc/self/fd/{fd}").LinkTarget; }
        finally { Native.Libc.close(fd); }
    }

    /// <param name="noFollow">Root reading files in users' trees (<see cref="OpenNoFollow"/>); the report reads with the
    /// caller's own rights, where an admin's linked data_dir must keep working.</param>
    /// <param name="interfaceOf">Which row groups, seen without it, also get the interface column: decoding that one string
    /// column costs about as much as all the others (a raw job file's check took 1.7 times as long with it).</param>
    public static async IAsyncEnumerable<ParquetRowGroup> ReadAsync(string path, bool noFollow,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default, Func<ParquetRowGroup, bool>? interfaceOf = null)
    {
        await using var fs = noFollow ? OpenNoFollow(path) : new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        await using var reader = await ParquetReader.CreateAsync(fs, cancellationToken: ct).ConfigureAwait(false);
        var fields = reader.Schema.DataFields.ToDictionary(f => f.Name);
        DataField F(string name) => fields.TryGetValue(name, out var f) ? f : throw new InvalidDataException($"no column '{name}': not an alumet-hpc file");
        string? rawColumn = fields.ContainsKey("energy_raw") ? "energy_raw" : fields.ContainsKey("value_raw") ? "value_raw" : null;
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var rg = reader.OpenRowGroupReader(g);
            int n = checked((int)rg.RowCount);
            var end = await Read<long>(rg, TimestampAsInt64(F("timestamp")), n, ct).ConfigureAwait(false);
            var interval = await Read<long>(rg, F("interval_us"), n, ct).ConfigureAwait(false);
            var consumer = await ReadStrings(rg, F("consumer"), n, ct).ConfigureAwait(false);
            var kind = await ReadStrings(rg, F("resource_kind"), n, ct).ConfigureAwait(false);
            var rid = await ReadStrings(rg, F("resource_id"), n, ct).ConfigureAwait(false);
            var node = await ReadStrings(rg, F("node"), n, ct).ConfigureAwait(false);
            var flags = fields.TryGetValue("flags", out var ff) ? await Read<int>(rg, ff, n, ct).ConfigureAwait(false) : new int[n];
            long[]? raw = null;
            double[] joules;
            if (rawColumn is not null)
            {
                raw = await Read<long>(rg, F(rawColumn), n, ct).ConfigureAwait(false);
                var jpu = await Read<double>(rg, F("joules_per_unit"), n, ct).ConfigureAwait(false);
                joules = new double[n];
                for (int i = 0; i < n; i++) joules[i] = raw[i] * jpu[i];
            }
            else
            {
                joules = await Read<double>(rg, F("value"), n, ct).ConfigureAwait(false); // schema 1, joules layout
            }
            var group = new ParquetRowGroup(n, end, interval, kind, rid, consumer, node, raw, joules, flags);
            if (interfaceOf?.Invoke(group) == true)
                group = group with
                {
                    Interface = fields.TryGetValue("interface", out var fi) ? await ReadStrings(rg, fi, n, ct).ConfigureAwait(false) : Enumerable.Repeat("", n).ToArray(),
                };
            yield return group;
        }
    }

    private static async Task<T[]> Read<T>(ParquetRowGroupReader rg, DataField f, int n, CancellationToken ct) where T : struct
    {
        if (!f.IsNullable)
        {
            var a = new T[n];
            await rg.ReadAsync<T>(f, a.AsMemory(), null, ct).ConfigureAwait(false);
            return a;
        }
        var b = new T?[n];
        await rg.ReadAsync<T>(f, b.AsMemory(), null, ct).ConfigureAwait(false);
        return b.Select(v => v ?? default).ToArray();
    }

    /// <summary>
    /// The timestamp column read as its physical INT64 µs (schema 2 delta-encodes it, which Parquet.Net's DateTime reader
    /// does not decode; schema 1 stored the same µs PLAIN).
    /// </summary>
    internal static DataField<long> TimestampAsInt64(DataField f)
    {
        var asLong = new DataField<long>(f.Name, f.IsNullable);
        _ = new ParquetSchema(asLong); // the reader finds a column by the field's schema path
        return asLong;
    }

    private static async Task<string[]> ReadStrings(ParquetRowGroupReader rg, DataField f, int n, CancellationToken ct)
    {
        var s = new string?[n];
        await rg.ReadAsync(f, s.AsMemory(), null, ct).ConfigureAwait(false);
        return s.Select(x => x ?? "").ToArray();
    }
}
