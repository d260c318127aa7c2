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
/// How the energy column is stored. Measured on a raw 1 kHz spool (16 series, noisy values; test
/// <c>ParquetSizeTests</c>): <see cref="Joules"/> ≈ 3.4 bytes/row (a double of raw × 1e-6 hides the integer
/// from the compressor), <see cref="RawCounts"/> ≈ 1.9 bytes/row (delta-encoded integers).
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
/// breaks under NativeAOT, DESIGN.md).
/// Layout choices for size (measured, see the tests' size report):
/// rows of a row group are ordered by series, then time, so every column is a few long runs:
/// strings become dictionary + RLE (almost free), timestamps/intervals delta-encode to a few bits,
/// and Zstd sees similar doubles next to each other.
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
        public static readonly DataField<string> MetricName = new("metric");
        /// <summary>Energy over the interval, J (raw counter units × joules-per-unit, converted once here).</summary>
        public static readonly DataField<double> Value = new("value");
        /// <summary><see cref="ParquetValueLayout.RawCounts"/>: energy in the counter's own unit (exact integer).</summary>
        public static readonly DataField<long> ValueRaw = new("value_raw");
        /// <summary><see cref="ParquetValueLayout.RawCounts"/>: J per raw unit (1e-6 powercap µJ, 1e-3 NVML mJ).</summary>
        public static readonly DataField<double> JoulesPerUnit = new("joules_per_unit");
        public static readonly DataField<string> UnitName = new("unit");
        /// <summary>Interval length on the monotonic clock, ns (exact: power = value / interval_ns × 1e9).</summary>
        public static readonly DataField<long> IntervalNs = new("interval_ns");
        public static readonly DataField<string> ResourceKind = new("resource_kind");
        public static readonly DataField<string> ResourceId = new("resource_id");
        public static readonly DataField<string> Consumer = new("consumer");
        public static readonly DataField<string> JobId = new("job_id");
        public static readonly DataField<string> Node = new("node");
        public static readonly DataField<string> Interface = new("interface");
        /// <summary>1 = wrap-ambiguous (value is a lower bound), 2 = a read failed during the interval.</summary>
        public static readonly DataField<int> Flags = new("flags");

        public static ParquetSchema Schema { get; } = new(
            Timestamp, MetricName, Value, UnitName, IntervalNs, ResourceKind, ResourceId, Consumer, JobId, Node, Interface, Flags);

        public static ParquetSchema RawSchema { get; } = new(
            Timestamp, MetricName, ValueRaw, JoulesPerUnit, UnitName, IntervalNs, ResourceKind, ResourceId, Consumer, JobId, Node, Interface, Flags);

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

    /// <summary>Exports <paramref name="spoolDirectory"/> to <paramref name="path"/> (written as <c>path.tmp</c>, then renamed).</summary>
    public static async Task<ParquetExportResult> ExportAsync(string spoolDirectory, string path, ParquetExportOptions? options = null, CancellationToken ct = default)
    {
        var meta = SpoolWriter.ReadMeta(spoolDirectory);
        options ??= new ParquetExportOptions();
        return await ExportAsync(meta, SpoolReader.ReadChunks(spoolDirectory, options.RowGroupRows), path, options, ct).ConfigureAwait(false);
    }

    public static async Task<ParquetExportResult> ExportAsync(SpoolMeta meta, IEnumerable<SpoolRecord[]> chunks, string path, ParquetExportOptions? options = null, CancellationToken ct = default)
    {
        options ??= new ParquetExportOptions();
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        string tmp = path + ".tmp";
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
                            var part = chunk.AsMemory(off, Math.Min(options.RowGroupRows, chunk.Length - off));
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
            // SmallestSize (the default) is ~8x slower for a few % (DESIGN.md).
            CompressionLevel = CompressionLevel.Optimal,
            // The hinted string columns have a handful of distinct values per file; never let a small or
            // unusual row group fall back to PLAIN because of the uniqueness heuristic.
            DictionaryEncodingThreshold = 1.0,
        };
        // Without the hint Parquet.Net writes strings PLAIN; with it they become a tiny dictionary + RLE indices.
        foreach (var f in new[] { Columns.MetricName, Columns.UnitName, Columns.ResourceKind, Columns.ResourceId, Columns.Consumer, Columns.JobId, Columns.Node, Columns.Interface })
            o.ColumnEncodingHints[f.Name] = EncodingHint.Dictionary;
        o.ColumnEncodingHints[Columns.Timestamp.Name] = EncodingHint.DeltaBinaryPacked;
        o.ColumnEncodingHints[Columns.IntervalNs.Name] = EncodingHint.DeltaBinaryPacked;
        o.ColumnEncodingHints[Columns.Flags.Name] = EncodingHint.DeltaBinaryPacked;
        o.ColumnEncodingHints[Columns.ValueRaw.Name] = EncodingHint.DeltaBinaryPacked;
        // value (double) stays PLAIN: with Zstd it measured 3.1 B/row vs 6.5 with BYTE_STREAM_SPLIT.
        return o;
    }

    /// <summary>Footer key-value metadata: what, how, where, by which tool (DESIGN.md: every number says its perimeter, interface, unit, rate).</summary>
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
            ["flags"] = "1=wrap-ambiguous (value is a lower bound), 2=read error during the interval",
            ["total_energy_domains"] = "cpu_package+dram+gpu (cpu_cores and uncore are inside cpu_package; psys contains package and dram)",
            ["consumers"] = "node = whole counter; job:<id> = this job's share; step:<id>.<step> = a step's part of the job share; other_jobs; unattributed. job + other_jobs + unattributed = node",
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
        private readonly string[] _kind, _rid, _consumer, _iface;
        private readonly double[] _jpu;
        private SpoolRecord[] _sorted = [];
        private DateTime[] _ts = [];
        private double[] _value = [];
        private long[] _interval = [];
        private int[] _flags = [];
        private string[] _sMetric = [], _sUnit = [], _sKind = [], _sRid = [], _sConsumer = [], _sJob = [], _sNode = [], _sIface = [];
        private int _n;

        public RowGroupBuffers(SpoolMeta meta, ParquetValueLayout layout)
        {
            _meta = meta;
            _layout = layout;
            int n = meta.Series.Count;
            _kind = new string[n]; _rid = new string[n]; _consumer = new string[n]; _iface = new string[n]; _jpu = new double[n];
            for (int i = 0; i < n; i++)
            {
                var s = meta.Series[i];
                _kind[i] = s.ResourceKind; _rid[i] = s.ResourceId; _consumer[i] = s.Consumer; _iface[i] = s.Interface; _jpu[i] = s.JoulesPerUnit;
            }
        }

        /// <summary>Copies one chunk into the column buffers, ordered by (series, time). Returns the row count.</summary>
        public int Fill(ReadOnlySpan<SpoolRecord> records)
        {
            int n = 0;
            if (_sorted.Length < records.Length) Grow(records.Length);
            foreach (ref readonly var r in records)
                if ((uint)r.Series < (uint)_kind.Length) _sorted[n++] = r; // a corrupt series index is skipped, never exported as garbage
            var span = _sorted.AsSpan(0, n);
            span.Sort(static (a, b) => a.Series != b.Series ? a.Series.CompareTo(b.Series) : a.WallNs.CompareTo(b.WallNs));
            for (int i = 0; i < n; i++)
            {
                ref readonly var r = ref span[i];
                _ts[i] = DateTime.UnixEpoch.AddTicks(r.WallNs / 100);
                _value[i] = r.Value * _jpu[r.Series];
                _raw[i] = r.Value;
                _scale[i] = _jpu[r.Series];
                _interval[i] = r.IntervalNs;
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
            _sMetric = Enumerable.Repeat(Metric, n).ToArray();
            _sUnit = Enumerable.Repeat(Unit, n).ToArray();
            _sJob = Enumerable.Repeat(_meta.JobId, n).ToArray();
            _sNode = Enumerable.Repeat(_meta.Node, n).ToArray();
            _sKind = new string[n]; _sRid = new string[n]; _sConsumer = new string[n]; _sIface = new string[n];
        }

        public async Task WriteAsync(ParquetWriter writer, CancellationToken ct)
        {
            int n = _n;
            using var rg = writer.CreateRowGroup();
            await rg.WriteAsync(Columns.Timestamp, new ReadOnlyMemory<DateTime>(_ts, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.MetricName, new ArraySegment<string>(_sMetric, 0, n)).ConfigureAwait(false);
            if (_layout == ParquetValueLayout.RawCounts)
            {
                await rg.WriteAsync(Columns.ValueRaw, new ReadOnlyMemory<long>(_raw, 0, n), null, null, ct).ConfigureAwait(false);
                await rg.WriteAsync(Columns.JoulesPerUnit, new ReadOnlyMemory<double>(_scale, 0, n), null, null, ct).ConfigureAwait(false);
            }
            else
            {
                await rg.WriteAsync(Columns.Value, new ReadOnlyMemory<double>(_value, 0, n), null, null, ct).ConfigureAwait(false);
            }
            await rg.WriteAsync(Columns.UnitName, new ArraySegment<string>(_sUnit, 0, n)).ConfigureAwait(false);
            await rg.WriteAsync(Columns.IntervalNs, new ReadOnlyMemory<long>(_interval, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.ResourceKind, new ArraySegment<string>(_sKind, 0, n)).ConfigureAwait(false);
            await rg.WriteAsync(Columns.ResourceId, new ArraySegment<string>(_sRid, 0, n)).ConfigureAwait(false);
            await rg.WriteAsync(Columns.Consumer, new ArraySegment<string>(_sConsumer, 0, n)).ConfigureAwait(false);
            await rg.WriteAsync(Columns.JobId, new ArraySegment<string>(_sJob, 0, n)).ConfigureAwait(false);
            await rg.WriteAsync(Columns.Node, new ArraySegment<string>(_sNode, 0, n)).ConfigureAwait(false);
            await rg.WriteAsync(Columns.Interface, new ArraySegment<string>(_sIface, 0, n)).ConfigureAwait(false);
            await rg.WriteAsync(Columns.Flags, new ReadOnlyMemory<int>(_flags, 0, n), null, null, ct).ConfigureAwait(false);
            rg.CompleteValidate();
        }
    }
}
