using System.Globalization;
using System.IO.Compression;
using Alumet.Hpc.Spool;
using Parquet;
using Parquet.Schema;

namespace Alumet.Hpc.Outputs.Parquet;

/// <summary>Options of one export.</summary>
/// <param name="RowGroupRows">Rows per row group: bounds memory (about 100 bytes per row while a group is built).</param>
/// <param name="FileMode">Unix mode of the final file (default 0640: the job's data is readable by its group, not by everyone).</param>
/// <param name="ExtraMetadata">More key-value pairs for the file footer (e.g. "slurm_partition").</param>
/// <param name="Layout">How the energy is stored: <see cref="ParquetValueLayout.Joules"/> (default) or raw counts + scale (smaller).</param>
public sealed record ParquetExportOptions(
    int RowGroupRows = 64 * 1024,
    UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead,
    IReadOnlyDictionary<string, string>? ExtraMetadata = null,
    ParquetValueLayout Layout = ParquetValueLayout.Joules);

/// <summary>
/// How the energy column is stored. Measured on a raw 1 kHz spool (2 sockets × package+dram × 4 consumers,
/// noisy values; test <c>ParquetSizeTests</c>): <see cref="Joules"/> ≈ 4.1 bytes/row, of which 3.8 for the
/// value (a double of raw × 1e-6 hides the integer from the compressor); <see cref="RawCounts"/> ≈ 1.9 bytes/row
/// (delta-encoded integers), and about 2x faster to write (Zstd spends most of its time on the doubles).
/// </summary>
public enum ParquetValueLayout
{
    /// <summary><c>value</c> DOUBLE in J: what pandas/DuckDB users expect.</summary>
    Joules,
    /// <summary><c>value_raw</c> INT64 in counter units + <c>joules_per_unit</c> DOUBLE: J = value_raw × joules_per_unit, exact.</summary>
    RawCounts,
}

/// <summary>What an export wrote.</summary>
public sealed record ParquetExportResult(string Path, long Rows, int RowGroups, long Bytes)
{
    public double BytesPerRow => Rows == 0 ? 0 : (double)Bytes / Rows;
}

/// <summary>
/// Converts a spool (meta.json + spool.bin) into one tidy Parquet file: one row per spool record.
/// Streaming: one row group is built at a time from a bounded chunk of records, so memory does not grow with
/// the job length. Uses Parquet.Net's low-level writer only (<c>ParquetSerializer</c> relies on reflection and
/// breaks under NativeAOT, docs/implementation-notes.md).
/// Layout choices for size (measured, see the tests' size report):
/// rows of a row group are grouped by series (each in time order), so every column is a few long runs:
/// strings become dictionary + RLE (almost free), intervals delta-encode to a few bits, timestamps (PLAIN:
/// Parquet.Net applies delta hints to INT32/INT64 only) compress to ~0.13 B/row, and Zstd sees similar values
/// next to each other. Row order is therefore: row groups in spool order; inside a group, series by series,
/// each in time order (footer key <c>row_order</c>): sort by timestamp when order matters.
/// </summary>
public static class ParquetExporter
{
    public const string Metric = "energy";
    public const string Unit = "J";

    /// <summary>The file's columns, in order.</summary>
    public static class Columns
    {
        /// <summary>End of the interval, UTC, microsecond precision (DuckDB TIMESTAMPTZ, pandas datetime64[us, UTC]).</summary>
        public static readonly DateTimeDataField Timestamp = new("timestamp", DateTimeFormat.Timestamp, isAdjustedToUTC: true, unit: DateTimeTimeUnit.Micros);
        public static readonly DataField<string> MetricName = new("metric", nullable: false);
        /// <summary>Energy over the interval, J (raw counter units × joules-per-unit, converted once here).</summary>
        public static readonly DataField<double> Value = new("value");
        /// <summary><see cref="ParquetValueLayout.RawCounts"/>: energy in the counter's own unit (exact integer).</summary>
        public static readonly DataField<long> ValueRaw = new("value_raw");
        /// <summary><see cref="ParquetValueLayout.RawCounts"/>: J per raw unit (1e-6 powercap µJ, 1e-3 NVML mJ).</summary>
        public static readonly DataField<double> JoulesPerUnit = new("joules_per_unit");
        public static readonly DataField<string> UnitName = new("unit", nullable: false);
        /// <summary>
        /// Interval length on the monotonic clock, µs (power = value / interval_us × 1e6). Rounded from the spool's ns:
        /// RAPL and NVML counters update every ~1 ms, and the ns digits were tick jitter that cost ~2 bytes per raw row.
        /// </summary>
        public static readonly DataField<long> IntervalUs = new("interval_us");
        public static readonly DataField<string> ResourceKind = new("resource_kind", nullable: false);
        public static readonly DataField<string> ResourceId = new("resource_id", nullable: false);
        public static readonly DataField<string> Consumer = new("consumer", nullable: false);
        public static readonly DataField<string> JobId = new("job_id", nullable: false);
        public static readonly DataField<string> Node = new("node", nullable: false);
        public static readonly DataField<string> Interface = new("interface", nullable: false);
        /// <summary>1 = wrap-ambiguous (value is a lower bound), 2 = a read failed during the interval.</summary>
        public static readonly DataField<int> Flags = new("flags");

        public static ParquetSchema Schema { get; } = new(
            Timestamp, MetricName, Value, UnitName, IntervalUs, ResourceKind, ResourceId, Consumer, JobId, Node, Interface, Flags);

        public static ParquetSchema RawSchema { get; } = new(
            Timestamp, MetricName, ValueRaw, JoulesPerUnit, UnitName, IntervalUs, ResourceKind, ResourceId, Consumer, JobId, Node, Interface, Flags);

        public static ParquetSchema For(ParquetValueLayout layout) => layout == ParquetValueLayout.RawCounts ? RawSchema : Schema;
    }

    /// <summary>
    /// Conventional location of a job+node file: <c>&lt;dataDir&gt;/&lt;cluster&gt;/&lt;scheduler&gt;/&lt;job id&gt;/&lt;job id&gt;.&lt;node&gt;.parquet</c>.
    /// Every component is reduced to [A-Za-z0-9._-] so that no value from the environment can climb out of dataDir.
    /// </summary>
    public static string DefaultPath(string dataDir, SpoolMeta meta)
    {
        string job = Safe(meta.JobId);
        return Path.Combine(dataDir, Safe(meta.Cluster), Safe(meta.Scheduler), job, $"{job}.{Safe(meta.Node)}.parquet");
    }

    private static string Safe(string s)
    {
        var chars = s.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray();
        string r = new string(chars).Trim('.');
        return r.Length == 0 ? "_" : r;
    }

    /// <summary>Exports <paramref name="spoolDirectory"/> to <paramref name="path"/> (written under a temporary name unique to this writer, then renamed).</summary>
    public static async Task<ParquetExportResult> ExportAsync(string spoolDirectory, string path, ParquetExportOptions? options = null, CancellationToken ct = default)
    {
        var meta = SpoolWriter.ReadMeta(spoolDirectory);
        options ??= new ParquetExportOptions();
        return await ExportCoreAsync(meta, SpoolReader.ReadChunks(spoolDirectory, options.RowGroupRows), path, options, ct).ConfigureAwait(false);
    }

    public static Task<ParquetExportResult> ExportAsync(SpoolMeta meta, IEnumerable<SpoolRecord[]> chunks, string path, ParquetExportOptions? options = null, CancellationToken ct = default) =>
        ExportCoreAsync(meta, chunks.Select(c => (ReadOnlyMemory<SpoolRecord>)c), path, options, ct);

    private static async Task<ParquetExportResult> ExportCoreAsync(SpoolMeta meta, IEnumerable<ReadOnlyMemory<SpoolRecord>> chunks, string path, ParquetExportOptions? options, CancellationToken ct)
    {
        options ??= new ParquetExportOptions();
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        string tmp = Core.AtomicFile.TempPath(path); // unique: two writers of one path never share a temporary file
        long rows = 0;
        int groups = 0;
        try
        {
            var fsOptions = new FileStreamOptions
            {
                Mode = FileMode.Create, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 1 << 16,
            };
            if (!OperatingSystem.IsWindows()) fsOptions.UnixCreateMode = options.FileMode;
            await using (var fs = new FileStream(tmp, fsOptions))
            {
                await using (var writer = await ParquetWriter.CreateAsync(Columns.For(options.Layout), fs, WriterOptions(), append: false, ct).ConfigureAwait(false))
                {
                    writer.CustomMetadata = FileMetadata(meta, options.ExtraMetadata, options.Layout);
                    var group = new RowGroupBuffers(meta, options.Layout);
                    foreach (var chunk in chunks)
                    {
                        ct.ThrowIfCancellationRequested();
                        // Re-slice: a reader may hand bigger chunks than one row group should hold.
                        for (int off = 0; off < chunk.Length; off += options.RowGroupRows)
                        {
                            var part = chunk.Slice(off, Math.Min(options.RowGroupRows, chunk.Length - off));
                            int n = group.Fill(part.Span);
                            if (n == 0) continue;
                            await group.WriteAsync(writer, ct).ConfigureAwait(false);
                            rows += n;
                            groups++;
                        }
                    }
                }
                await fs.FlushAsync(ct).ConfigureAwait(false);
                fs.Flush(flushToDisk: true); // the rename below must never expose a file whose blocks are not on disk
            }
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(tmp, options.FileMode); // umask may have narrowed the create mode
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
        return new ParquetExportResult(path, rows, groups, new FileInfo(path).Length);
    }

    internal static ParquetOptions WriterOptions()
    {
        var o = new ParquetOptions
        {
            CompressionMethod = CompressionMethod.Zstd,
            // SmallestSize (the default) is ~8x slower for a few % (docs/implementation-notes.md).
            CompressionLevel = CompressionLevel.Optimal,
            // The hinted string columns have a handful of distinct values per file; never let a small or
            // unusual row group fall back to PLAIN because of the uniqueness heuristic.
            DictionaryEncodingThreshold = 1.0,
        };
        // Without the hint Parquet.Net writes strings PLAIN; with it they become a tiny dictionary + RLE indices.
        foreach (var f in new[] { Columns.MetricName, Columns.UnitName, Columns.ResourceKind, Columns.ResourceId, Columns.Consumer, Columns.JobId, Columns.Node, Columns.Interface })
            o.ColumnEncodingHints[f.Name] = EncodingHint.Dictionary;
        // timestamp stays PLAIN (Parquet.Net 6.1 applies delta hints to Int32/Int64 only); grouped by series and
        // Zstd-compressed it measured ~0.13 B/row.
        o.ColumnEncodingHints[Columns.IntervalUs.Name] = EncodingHint.DeltaBinaryPacked;
        o.ColumnEncodingHints[Columns.Flags.Name] = EncodingHint.DeltaBinaryPacked;
        o.ColumnEncodingHints[Columns.ValueRaw.Name] = EncodingHint.DeltaBinaryPacked;
        // value (double) stays PLAIN: with Zstd it measured 3.1 B/row vs 6.5 with BYTE_STREAM_SPLIT.
        return o;
    }

    /// <summary>Footer key-value metadata: what, how, where, by which tool (README: every number says what it covers, how it was obtained, its unit and rate).</summary>
    public static Dictionary<string, string> FileMetadata(SpoolMeta meta, IReadOnlyDictionary<string, string>? extra = null, ParquetValueLayout layout = ParquetValueLayout.Joules)
    {
        var interfaces = meta.Series.Select(s => s.Interface).Where(i => i.Length > 0).Distinct().OrderBy(i => i, StringComparer.Ordinal).ToList();
        bool estimated = interfaces.Contains("estimate");
        var kv = new Dictionary<string, string>
        {
            ["job_id"] = meta.JobId,
            ["cluster"] = meta.Cluster,
            ["scheduler"] = meta.Scheduler,
            ["node"] = meta.Node,
            ["user"] = meta.User,
            ["uid"] = meta.Uid.ToString(CultureInfo.InvariantCulture),
            ["frequency_hz"] = JobSummary.FormatFrequency(meta.SourceHz),
            ["interfaces"] = string.Join(',', interfaces),
            ["perimeter"] = meta.Perimeter,
            ["attribution_mode"] = meta.AttributionMode,
            ["attribution_period_ms"] = meta.AttributionPeriodMs.ToString(CultureInfo.InvariantCulture),
            ["storage_period_ms"] = meta.StoragePeriodMs.ToString(CultureInfo.InvariantCulture),
            ["estimated"] = estimated ? "true" : "false",
            ["unit"] = Unit,
            ["value_layout"] = layout == ParquetValueLayout.RawCounts ? "raw: J = value_raw * joules_per_unit" : "joules: value is J",
            ["flags"] = "1=wrap-ambiguous (value is a lower bound), 2=read error during the interval, 4=implausible reading rejected (counter reset or jump above max_power_w; not counted)",
            ["total_energy_domains"] = "cpu_package+dram+gpu (cpu_cores and uncore are inside cpu_package; psys contains package and dram)",
            ["consumers"] = "node = whole counter; job:<id> = this job's share; step:<id>.<step> = a step's part of the job share; other_jobs; unattributed. job + other_jobs + unattributed = node",
            ["row_order"] = "row groups in spool order; inside a row group grouped by series, each series in time order",
            ["tool"] = "alumet-hpc",
            ["tool_version"] = meta.ToolVersion,
            ["spool_format_version"] = meta.FormatVersion.ToString(CultureInfo.InvariantCulture),
            ["start_wall_ns"] = meta.StartWallNs.ToString(CultureInfo.InvariantCulture),
        };
        if (estimated)
        {
            kv["estimate_model"] = meta.EstimateModel;
            kv["estimate_note"] = "rows with interface=estimate come from a CPU-time power model, not a measurement";
        }
        if (extra is not null)
            foreach (var (k, v) in extra) kv[k] = v;
        return kv;
    }

    /// <summary>Column buffers of one row group, reused across groups (allocation stays flat).</summary>
    private sealed class RowGroupBuffers
    {
        private readonly SpoolMeta _meta;
        private readonly ParquetValueLayout _layout;
        private long[] _raw = [];
        private double[] _scale = [];
        // Strings as ReadOnlyMemory<char> for REQUIRED (non-null) columns: no per-group conversion by the library.
        private readonly ReadOnlyMemory<char>[] _kind, _rid, _consumer, _iface;
        private readonly double[] _jpu;
        private SpoolRecord[] _sorted = [];
        private readonly int[] _seriesStart;
        private DateTime[] _ts = [];
        private double[] _value = [];
        private long[] _interval = [];
        private int[] _flags = [];
        private ReadOnlyMemory<char>[] _sMetric = [], _sUnit = [], _sKind = [], _sRid = [], _sConsumer = [], _sJob = [], _sNode = [], _sIface = [];
        private int _n;

        public RowGroupBuffers(SpoolMeta meta, ParquetValueLayout layout)
        {
            _meta = meta;
            _layout = layout;
            int n = meta.Series.Count;
            _seriesStart = new int[n + 1];
            _kind = new ReadOnlyMemory<char>[n]; _rid = new ReadOnlyMemory<char>[n]; _consumer = new ReadOnlyMemory<char>[n]; _iface = new ReadOnlyMemory<char>[n];
            _jpu = new double[n];
            for (int i = 0; i < n; i++)
            {
                var s = meta.Series[i];
                _kind[i] = s.ResourceKind.AsMemory(); _rid[i] = s.ResourceId.AsMemory(); _consumer[i] = s.Consumer.AsMemory();
                _iface[i] = s.Interface.AsMemory(); _jpu[i] = s.JoulesPerUnit;
            }
        }

        /// <summary>Copies one chunk into the column buffers, grouped by series (append order kept within a series). Returns the row count.</summary>
        public int Fill(ReadOnlySpan<SpoolRecord> records)
        {
            if (_sorted.Length < records.Length) Grow(records.Length);
            // Counting sort by series: O(n) and stable, so each series stays in its (time) append order.
            var start = _seriesStart;
            Array.Clear(start);
            foreach (ref readonly var r in records)
                if ((uint)r.Series < (uint)_kind.Length) start[r.Series + 1]++; // a corrupt series index is skipped, never exported as garbage
            for (int i = 1; i < start.Length; i++) start[i] += start[i - 1];
            int n = start[^1];
            foreach (ref readonly var r in records)
                if ((uint)r.Series < (uint)_kind.Length) _sorted[start[r.Series]++] = r;
            var span = _sorted.AsSpan(0, n);
            for (int i = 0; i < n; i++)
            {
                ref readonly var r = ref span[i];
                _ts[i] = DateTime.UnixEpoch.AddTicks(r.WallNs / 100);
                _value[i] = r.Value * _jpu[r.Series];
                _raw[i] = r.Value;
                _scale[i] = _jpu[r.Series];
                _interval[i] = (r.IntervalNs + 500) / 1000;
                _flags[i] = (int)r.Flags;
                _sKind[i] = _kind[r.Series]; _sRid[i] = _rid[r.Series]; _sConsumer[i] = _consumer[r.Series]; _sIface[i] = _iface[r.Series];
            }
            _n = n;
            return n;
        }

        private void Grow(int n)
        {
            _sorted = new SpoolRecord[n]; _ts = new DateTime[n]; _value = new double[n]; _interval = new long[n]; _flags = new int[n];
            _raw = new long[n]; _scale = new double[n];
            _sMetric = Filled(Metric, n);
            _sUnit = Filled(Unit, n);
            _sJob = Filled(_meta.JobId, n);
            _sNode = Filled(_meta.Node, n);
            _sKind = new ReadOnlyMemory<char>[n]; _sRid = new ReadOnlyMemory<char>[n]; _sConsumer = new ReadOnlyMemory<char>[n]; _sIface = new ReadOnlyMemory<char>[n];
        }

        private static ReadOnlyMemory<char>[] Filled(string value, int n)
        {
            var a = new ReadOnlyMemory<char>[n];
            Array.Fill(a, value.AsMemory());
            return a;
        }

        public async Task WriteAsync(ParquetWriter writer, CancellationToken ct)
        {
            int n = _n;
            using var rg = writer.CreateRowGroup();
            await rg.WriteAsync(Columns.Timestamp, new ReadOnlyMemory<DateTime>(_ts, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.MetricName, new ReadOnlyMemory<ReadOnlyMemory<char>>(_sMetric, 0, n), null, null, ct).ConfigureAwait(false);
            if (_layout == ParquetValueLayout.RawCounts)
            {
                await rg.WriteAsync(Columns.ValueRaw, new ReadOnlyMemory<long>(_raw, 0, n), null, null, ct).ConfigureAwait(false);
                await rg.WriteAsync(Columns.JoulesPerUnit, new ReadOnlyMemory<double>(_scale, 0, n), null, null, ct).ConfigureAwait(false);
            }
            else
            {
                await rg.WriteAsync(Columns.Value, new ReadOnlyMemory<double>(_value, 0, n), null, null, ct).ConfigureAwait(false);
            }
            await rg.WriteAsync(Columns.UnitName, new ReadOnlyMemory<ReadOnlyMemory<char>>(_sUnit, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.IntervalUs, new ReadOnlyMemory<long>(_interval, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.ResourceKind, new ReadOnlyMemory<ReadOnlyMemory<char>>(_sKind, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.ResourceId, new ReadOnlyMemory<ReadOnlyMemory<char>>(_sRid, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.Consumer, new ReadOnlyMemory<ReadOnlyMemory<char>>(_sConsumer, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.JobId, new ReadOnlyMemory<ReadOnlyMemory<char>>(_sJob, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.Node, new ReadOnlyMemory<ReadOnlyMemory<char>>(_sNode, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.Interface, new ReadOnlyMemory<ReadOnlyMemory<char>>(_sIface, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.Flags, new ReadOnlyMemory<int>(_flags, 0, n), null, null, ct).ConfigureAwait(false);
            rg.CompleteValidate();
        }
    }
}
