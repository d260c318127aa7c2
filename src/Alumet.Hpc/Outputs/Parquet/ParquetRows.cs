using Microsoft.Win32.SafeHandles;
using Parquet;
using Parquet.Schema;

namespace Alumet.Hpc.Outputs.Parquet;

/// <summary>One series of a Parquet file: the rows of one (resource, consumer, node).</summary>
public sealed class ParquetSeries(string resourceKind, string resourceId, string consumer, string node, string domain)
{
    public string ResourceKind { get; } = resourceKind;
    public string ResourceId { get; } = resourceId;
    public string Consumer { get; } = consumer;
    public string Node { get; } = node;
    /// <summary><c>cpu_package:0</c></summary>
    public string Domain { get; } = domain;
}

/// <summary>
/// One row group of an alumet-hpc Parquet file: the columns its readers need (the timeline, the conservation check),
/// whatever the schema version (README "Parquet schema"). The four string columns come as one series per row
/// (<see cref="SeriesOf"/> into <see cref="Series"/>): each distinct string is decoded once per file, not per row.
/// Its arrays are the reader's buffers: valid until the next row group is read, their first <see cref="Count"/>
/// entries (<see cref="ParquetRows.ReadAsync(string, bool, CancellationToken)"/>).
/// </summary>
public sealed class ParquetRowGroup
{
    private string[]? _kind, _id, _consumer, _node;

    internal ParquetRowGroup(int count, long[] endUs, long[] intervalUs, ParquetSeries[] series, int[] seriesOf, long[]? energyRaw, double[] joules, int[] flags)
    {
        (Count, EndUs, IntervalUs, Series, SeriesOf, EnergyRaw, Joules, Flags) = (count, endUs, intervalUs, series, seriesOf, energyRaw, joules, flags);
    }

    public int Count { get; }
    /// <summary>End of each row's interval, µs since the Unix epoch.</summary>
    public long[] EndUs { get; }
    public long[] IntervalUs { get; }
    /// <summary>The row group's distinct series, in the order of their first row.</summary>
    public ParquetSeries[] Series { get; }
    /// <summary>Per row, its series' index in <see cref="Series"/>.</summary>
    public int[] SeriesOf { get; }
    /// <summary>The exact integer per row in the counter's unit (schema 2); null for schema 1 files.</summary>
    public long[]? EnergyRaw { get; }
    /// <summary>Energy per row, J (<c>energy_raw × joules_per_unit</c>, or schema 1's double).</summary>
    public double[] Joules { get; }
    /// <summary>SpoolFlags per row (0 when the file has no flags column).</summary>
    public int[] Flags { get; }

    public string[] ResourceKind => _kind ??= PerRow(s => s.ResourceKind);
    public string[] ResourceId => _id ??= PerRow(s => s.ResourceId);
    public string[] Consumer => _consumer ??= PerRow(s => s.Consumer);
    public string[] Node => _node ??= PerRow(s => s.Node);

    public string Domain(int i) => Series[SeriesOf[i]].Domain;

    private string[] PerRow(Func<ParquetSeries, string> column)
    {
        var a = new string[Count];
        for (int i = 0; i < Count; i++) a[i] = column(Series[SeriesOf[i]]);
        return a;
    }
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
        if (Native.Libc.StatFd(fd) is not { IsRegular: true })
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

    /// <summary>
    /// The file's row groups, one at a time: a group's arrays are the reader's buffers, valid until the next group is
    /// read (its <see cref="ParquetRowGroup.Count"/> first entries; they may be longer), so that a file costs a few row
    /// groups' memory and no page faults past its first.
    /// </summary>
    /// <param name="noFollow">Root reading files in users' trees (<see cref="OpenNoFollow"/>); the report reads with the
    /// caller's own rights, where an admin's linked data_dir must keep working.</param>
    public static IAsyncEnumerable<ParquetRowGroup> ReadAsync(string path, bool noFollow, CancellationToken ct = default) =>
        ReadAsync(path, noFollow, energy: true, flags: true, ct);

    /// <param name="energy">false: the energy columns are not read (<see cref="ParquetRowGroup.EnergyRaw"/> null,
    /// <see cref="ParquetRowGroup.Joules"/> empty), for a pass that needs the rows' times and series only.</param>
    /// <param name="flags">false: the flags column is not read (<see cref="ParquetRowGroup.Flags"/> all 0).</param>
    public static async IAsyncEnumerable<ParquetRowGroup> ReadAsync(string path, bool noFollow, bool energy, bool flags,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var fs = noFollow ? OpenNoFollow(path) : new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        await using var reader = await ParquetReader.CreateAsync(fs, cancellationToken: ct).ConfigureAwait(false);
        var fields = reader.Schema.DataFields.ToDictionary(f => f.Name);
        DataField F(string name) => fields.TryGetValue(name, out var f) ? f : throw new InvalidDataException($"no column '{name}': not an alumet-hpc file");
        string? rawColumn = fields.ContainsKey("energy_raw") ? "energy_raw" : fields.ContainsKey("value_raw") ? "value_raw" : null;
        var timestamp = TimestampAsInt64(F("timestamp"));
        var columns = new SeriesColumns();
        long[] end = [], interval = [], raw = [];
        double[] joules = [], jpu = [];
        int[] flagValues = [], seriesOf = [];
        for (int g = 0; g < reader.RowGroupCount; g++)
        {
            using var rg = reader.OpenRowGroupReader(g);
            int n = checked((int)rg.RowCount);
            await ReadInto(rg, timestamp, Fit(ref end, n), ct).ConfigureAwait(false);
            await ReadInto(rg, F("interval_us"), Fit(ref interval, n), ct).ConfigureAwait(false);
            await columns.Consumer.ReadAsync(rg, F("consumer"), n, ct).ConfigureAwait(false);
            await columns.Kind.ReadAsync(rg, F("resource_kind"), n, ct).ConfigureAwait(false);
            await columns.Id.ReadAsync(rg, F("resource_id"), n, ct).ConfigureAwait(false);
            await columns.Node.ReadAsync(rg, F("node"), n, ct).ConfigureAwait(false);
            var series = columns.Series(Fit(ref seriesOf, n).Span);
            var flagsRead = Fit(ref flagValues, n);
            if (flags && fields.TryGetValue("flags", out var ff)) await ReadInto(rg, ff, flagsRead, ct).ConfigureAwait(false);
            else flagsRead.Span.Clear();
            bool hasRaw = energy && rawColumn is not null;
            if (hasRaw)
            {
                await ReadInto(rg, F(rawColumn!), Fit(ref raw, n), ct).ConfigureAwait(false);
                await ReadInto(rg, F("joules_per_unit"), Fit(ref jpu, n), ct).ConfigureAwait(false);
                Fit(ref joules, n);
                for (int i = 0; i < n; i++) joules[i] = raw[i] * jpu[i];
            }
            else if (energy)
            {
                await ReadInto(rg, F("value"), Fit(ref joules, n), ct).ConfigureAwait(false); // schema 1, joules layout
            }
            yield return new ParquetRowGroup(n, end, interval, series, seriesOf, hasRaw ? raw : null, energy ? joules : [], flagValues);
        }
    }

    /// <summary>The first <paramref name="n"/> entries of <paramref name="buffer"/>, grown when shorter.</summary>
    private static Memory<T> Fit<T>(ref T[] buffer, int n)
    {
        if (buffer.Length < n) buffer = new T[n];
        return buffer.AsMemory(0, n);
    }

    /// <summary>A column into <paramref name="into"/> (its length: the row count); a null reads as the default value.</summary>
    private static async Task ReadInto<T>(ParquetRowGroupReader rg, DataField f, Memory<T> into, CancellationToken ct) where T : struct
    {
        if (!f.IsNullable)
        {
            await rg.ReadAsync<T>(f, into, null, ct).ConfigureAwait(false);
            return;
        }
        var b = new T?[into.Length];
        await rg.ReadAsync<T>(f, b.AsMemory(), null, ct).ConfigureAwait(false);
        var span = into.Span;
        for (int i = 0; i < b.Length; i++) span[i] = b[i] ?? default;
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

    /// <summary>
    /// The four string columns of a file, made into series: each column's distinct strings are decoded once per file,
    /// and its rows compared by the reader's dictionary entry (Parquet.Net hands a dictionary-encoded chunk's rows as
    /// slices of its dictionary page's text: equal slices, equal strings), by content only when a slice is first seen.
    /// </summary>
    private sealed class SeriesColumns
    {
        public readonly StringColumn Kind = new(), Id = new(), Consumer = new(), Node = new();
        private readonly Dictionary<(int, int, int, int), ParquetSeries> _series = [];
        private readonly Dictionary<(int, int), string> _domains = [];
        private readonly Dictionary<(int, int, int, int), int> _wide = [];
        private int[] _table = [];

        /// <summary>The row group's series (first row first) and each row's, from the four columns' last read.</summary>
        public ParquetSeries[] Series(Span<int> of)
        {
            int n = of.Length;
            int m1 = Id.Distinct, m2 = Consumer.Distinct, m3 = Node.Distinct;
            long combinations = (long)Kind.Distinct * m1 * m2 * m3;
            const int TableMax = 1 << 14;
            bool table = combinations <= TableMax;
            if (table)
            {
                if (_table.Length < combinations) _table = new int[TableMax];
                _table.AsSpan(0, (int)combinations).Fill(-1);
            }
            else _wide.Clear();
            var list = new List<ParquetSeries>();
            ReadOnlySpan<int> k = Kind.Local.AsSpan(0, n), r = Id.Local.AsSpan(0, n), c = Consumer.Local.AsSpan(0, n), d = Node.Local.AsSpan(0, n);
            for (int i = 0; i < n; i++)
            {
                int key = table ? ((k[i] * m1 + r[i]) * m2 + c[i]) * m3 + d[i] : 0;
                int s = table ? _table[key] : _wide.GetValueOrDefault((k[i], r[i], c[i], d[i]), -1);
                if (s < 0)
                {
                    s = list.Count;
                    list.Add(Of(k[i], r[i], c[i], d[i]));
                    if (table) _table[key] = s; else _wide[(k[i], r[i], c[i], d[i])] = s;
                }
                of[i] = s;
            }
            return [.. list];
        }

        private ParquetSeries Of(int k, int r, int c, int d)
        {
            var key = (Kind.FileId(k), Id.FileId(r), Consumer.FileId(c), Node.FileId(d));
            if (!_series.TryGetValue(key, out var s))
            {
                string kind = Kind.Strings[key.Item1], id = Id.Strings[key.Item2];
                if (!_domains.TryGetValue((key.Item1, key.Item2), out var domain)) _domains[(key.Item1, key.Item2)] = domain = $"{kind}:{id}";
                _series[key] = s = new ParquetSeries(kind, id, Consumer.Strings[key.Item3], Node.Strings[key.Item4], domain);
            }
            return s;
        }
    }

    /// <summary>One string column: per row of the last row group read, a local id (<see cref="Local"/>, 0 … <see cref="Distinct"/> − 1).</summary>
    private sealed class StringColumn
    {
        private const int SlicesScanned = 8, SlicesKept = 4096;
        public readonly List<string> Strings = [];
        private readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
        private readonly List<int> _localToFile = [];
        private int[] _fileToLocal = [], _fileGroup = [];
        private int _group;
        // The row group's distinct slices seen so far, by identity: a few scanned, then a map (a PLAIN-encoded chunk has
        // a slice per row: past SlicesKept its rows are looked up by text alone).
        private readonly List<ReadOnlyMemory<char>> _slices = [];
        private readonly List<int> _sliceLocal = [];
        private readonly Dictionary<ReadOnlyMemory<char>, int> _sliceMap = [];
        private ReadOnlyMemory<char>[] _values = [];
        public int[] Local = [];

        public int Distinct => _localToFile.Count;

        public int FileId(int local) => _localToFile[local];

        public async Task ReadAsync(ParquetRowGroupReader rg, DataField f, int n, CancellationToken ct)
        {
            if (_values.Length < n) _values = new ReadOnlyMemory<char>[n];
            if (Local.Length < n) Local = new int[n];
            await ReadInto(rg, f, _values.AsMemory(0, n), ct).ConfigureAwait(false);
            Index(n);
        }

        private void Index(int n)
        {
            _group++;
            _slices.Clear();
            _sliceLocal.Clear();
            _sliceMap.Clear();
            _localToFile.Clear();
            var values = _values.AsSpan(0, n);
            var local = Local.AsSpan(0, n);
            ReadOnlyMemory<char> last = default;
            int lastLocal = -1;
            for (int i = 0; i < values.Length; i++)
            {
                var v = values[i];
                if (lastLocal < 0 || !v.Equals(last)) (last, lastLocal) = (v, LocalOf(v));
                local[i] = lastLocal;
            }
            values.Clear(); // no reference to the reader's pages kept
            _slices.Clear();
            _sliceMap.Clear();
        }

        /// <summary>The local id of a slice: by identity among those seen in the row group, else by its text.</summary>
        private int LocalOf(ReadOnlyMemory<char> v)
        {
            for (int j = 0; j < _slices.Count; j++)
                if (_slices[j].Equals(v)) return _sliceLocal[j];
            if (_sliceMap.Count > 0 && _sliceMap.TryGetValue(v, out int known)) return known;
            var text = v.Span;
            if (!_ids.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(text, out int id))
            {
                id = Strings.Count;
                string s = text.ToString();
                Strings.Add(s);
                _ids[s] = id;
            }
            if (_fileToLocal.Length <= id)
            {
                Array.Resize(ref _fileToLocal, Math.Max(16, id * 2));
                Array.Resize(ref _fileGroup, _fileToLocal.Length);
            }
            if (_fileGroup[id] != _group)
            {
                (_fileGroup[id], _fileToLocal[id]) = (_group, _localToFile.Count);
                _localToFile.Add(id);
            }
            int l = _fileToLocal[id];
            if (_slices.Count < SlicesScanned) { _slices.Add(v); _sliceLocal.Add(l); }
            else if (_sliceMap.Count < SlicesKept) _sliceMap[v] = l;
            return l;
        }
    }
}
