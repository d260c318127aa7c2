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
/// Which energy columns a file has. Both have the exact integers (<c>energy_raw</c> INT64 in the counter's unit and
/// <c>joules_per_unit</c>); <see cref="Joules"/> adds <c>energy_j</c> DOUBLE. Measured on a raw 1 kHz spool (test
/// <c>ParquetSizeTests</c>): the double costs ~2-4 bytes per row (noisy mantissas do not compress), the integers ~1.
/// </summary>
public enum ParquetValueLayout
{
    /// <summary><c>energy_raw</c> + <c>joules_per_unit</c> + <c>energy_j</c> DOUBLE (J).</summary>
    Joules,
    /// <summary><c>energy_raw</c> INT64 in counter units + <c>joules_per_unit</c> DOUBLE: J = energy_raw × joules_per_unit, exact.</summary>
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
/// strings become dictionary + RLE (almost free), timestamps, intervals and raw energies delta-encode to a few bits,
/// and Zstd sees similar values next to each other. Row order is therefore: row groups in spool order; inside a
/// group, series by series, each in time order (footer key <c>row_order</c>): one series is in time order over the
/// whole file without a sort.
/// </summary>
public static class ParquetExporter
{
    public const string Unit = "J";

    /// <summary>Version of the file layout below (footer key <c>schema_version</c>); 1 = files before it had the key.</summary>
    public const int SchemaVersion = 2;

    /// <summary>The file's columns, in order (README "Parquet schema" has the table).</summary>
    public static class Columns
    {
        /// <summary>
        /// End of the interval, µs since the Unix epoch, annotated TIMESTAMP(MICROS, UTC) by <see cref="ParquetFooter"/>
        /// after writing (DuckDB TIMESTAMPTZ, pandas datetime64[us, UTC]): written as INT64 so that its statistics are right.
        /// </summary>
        public static readonly DataField<long> Timestamp = new("timestamp");
        /// <summary>
        /// Interval length on the monotonic clock, µs (power = energy / interval). Rounded from the spool's ns:
        /// RAPL and NVML counters update every ~1 ms, and the ns digits were tick jitter that cost ~2 bytes per raw row.
        /// </summary>
        public static readonly DataField<long> IntervalUs = new("interval_us");
        /// <summary><c>resource_kind:resource_id</c>, e.g. <c>cpu_package:0</c>, <c>gpu:0000:3b:00.0</c>.</summary>
        public static readonly DataField<string> Domain = new("domain", nullable: false);
        public static readonly DataField<string> ResourceKind = new("resource_kind", nullable: false);
        public static readonly DataField<string> ResourceId = new("resource_id", nullable: false);
        public static readonly DataField<string> Consumer = new("consumer", nullable: false);
        /// <summary>Whether this row's domain is added into TotalEnergy (package, DRAM, GPU; not cores, uncore, psys).</summary>
        public static readonly DataField<bool> CountsInTotal = new("counts_in_total");
        /// <summary>Energy over the interval in the counter's own integer unit (exact).</summary>
        public static readonly DataField<long> EnergyRaw = new("energy_raw");
        /// <summary>J per raw unit (1e-6 powercap µJ, 1e-3 NVML mJ): J = energy_raw × joules_per_unit.</summary>
        public static readonly DataField<double> JoulesPerUnit = new("joules_per_unit");
        /// <summary><see cref="ParquetValueLayout.Joules"/> only: energy over the interval, J.</summary>
        public static readonly DataField<double> EnergyJ = new("energy_j");
        public static readonly DataField<string> Interface = new("interface", nullable: false);
        /// <summary>Rate at which this row's source was read, Hz (numeric; the footer has it per source too).</summary>
        public static readonly DataField<double> ReadHz = new("read_hz");
        /// <summary>1 = wrap-ambiguous (energy is a lower bound), 2 = a read failed during the interval.</summary>
        public static readonly DataField<int> Flags = new("flags");
        public static readonly DataField<string> JobId = new("job_id", nullable: false);
        public static readonly DataField<string> Node = new("node", nullable: false);
        public static readonly DataField<string> User = new("user", nullable: false);
        /// <summary>The run of the job (SLUID, else its start time): job_id is not unique over a cluster's life.</summary>
        public static readonly DataField<string> RunId = new("run_id", nullable: false);

        private static readonly Field[] Head = [Timestamp, IntervalUs, Domain, ResourceKind, ResourceId, Consumer, CountsInTotal, EnergyRaw, JoulesPerUnit];
        private static readonly Field[] Tail = [Interface, ReadHz, Flags, JobId, Node, User, RunId];

        public static ParquetSchema Schema { get; } = new([.. Head, EnergyJ, .. Tail]);
        public static ParquetSchema RawSchema { get; } = new([.. Head, .. Tail]);

        public static ParquetSchema For(ParquetValueLayout layout) => layout == ParquetValueLayout.RawCounts ? RawSchema : Schema;

        /// <summary>Dictionary-encoded string columns (a handful of distinct values per file).</summary>
        internal static readonly DataField<string>[] Strings = [Domain, ResourceKind, ResourceId, Consumer, Interface, JobId, Node, User, RunId];
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
                var footer = ParquetFooter.Read(fs);
                footer.AnnotateTimestampMicros(Columns.Timestamp.Name);
                footer.WriteTo(fs); // syncs: the rename below must never expose a file whose blocks are not on disk
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
        foreach (var f in Columns.Strings)
            o.ColumnEncodingHints[f.Name] = EncodingHint.Dictionary;
        // Integers: delta-encoded (rows of a series sit together, so deltas are small); the timestamp is INT64 for this too.
        foreach (var f in new[] { Columns.Timestamp, Columns.IntervalUs, Columns.EnergyRaw })
            o.ColumnEncodingHints[f.Name] = EncodingHint.DeltaBinaryPacked;
        o.ColumnEncodingHints[Columns.Flags.Name] = EncodingHint.DeltaBinaryPacked;
        // Doubles stay PLAIN: with Zstd energy_j measured 3.1 B/row vs 6.5 with BYTE_STREAM_SPLIT; joules_per_unit and
        // read_hz are constant per series and compress to almost nothing.
        return o;
    }

    /// <summary>Footer key-value metadata: what, how, where, by which tool (README: every number says what it covers, how it was obtained, its unit and rate).</summary>
    public static Dictionary<string, string> FileMetadata(SpoolMeta meta, IReadOnlyDictionary<string, string>? extra = null, ParquetValueLayout layout = ParquetValueLayout.Joules)
    {
        var interfaces = meta.Series.Select(s => s.Interface).Where(i => i.Length > 0).Distinct().OrderBy(i => i, StringComparer.Ordinal).ToList();
        bool estimated = interfaces.Contains("estimate");
        var kv = new Dictionary<string, string>
        {
            ["schema_version"] = SchemaVersion.ToString(CultureInfo.InvariantCulture),
            ["job_id"] = meta.JobId,
            ["run_id"] = ParquetDataset.RunId(meta),
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
            ["energy_columns"] = layout == ParquetValueLayout.RawCounts
                ? "energy_raw * joules_per_unit = J (exact)"
                : "energy_j = J; energy_raw * joules_per_unit = J (exact)",
            ["power"] = "W = energy / (interval_us / 1e6); over a window: sum(energy) / sum(interval) (examples/queries.sql)",
            ["flags"] = "1=wrap-ambiguous (energy is a lower bound), 2=read error during the interval, 4=implausible reading rejected (counter reset or jump above max_power_w; not counted)",
            ["total_energy_domains"] = "counts_in_total: cpu_package+dram+gpu (cpu_cores and uncore are inside cpu_package; psys contains package and dram)",
            ["consumers"] = "node = whole counter; job:<id> = this job's share; step:<id>.<step> = a step's part of the job share; other_jobs; unattributed. job + other_jobs + unattributed = node",
            ["row_order"] = RowOrder,
            ["tool"] = "alumet-hpc",
            ["tool_version"] = meta.ToolVersion,
            ["spool_format_version"] = meta.FormatVersion.ToString(CultureInfo.InvariantCulture),
            ["start_wall_ns"] = meta.StartWallNs.ToString(CultureInfo.InvariantCulture),
        };
        foreach (var (source, hz) in meta.SourceHz)
            kv[$"frequency_hz.{source}"] = hz.ToString("R", CultureInfo.InvariantCulture);
        if (estimated)
        {
            kv["estimate_model"] = meta.EstimateModel;
            kv["estimate_note"] = "rows with interface=estimate come from a CPU-time power model, not a measurement";
        }
        if (extra is not null)
            foreach (var (k, v) in extra) kv[k] = v;
        return kv;
    }

    /// <summary>Footer key <c>row_order</c>.</summary>
    public const string RowOrder = "row groups in spool order; inside a row group grouped by series, each series in time order: the rows of one series (domain, consumer) are in time order over the whole file";

    /// <summary>
    /// The source a series was read by (its <c>frequency_hz.&lt;source&gt;</c>): GPUs by NVML, the model by "estimate",
    /// every other domain by RAPL.
    /// </summary>
    public static double ReadHz(SpoolMeta meta, SpoolSeries s)
    {
        string source = s.Interface == "estimate" ? "estimate" : s.ResourceKind == "gpu" ? "nvml" : "rapl";
        return meta.SourceHz.TryGetValue(source, out double hz) ? hz : 0;
    }

    /// <summary>Column buffers of one row group, reused across groups (allocation stays flat).</summary>
    private sealed class RowGroupBuffers
    {
        private readonly ParquetValueLayout _layout;
        // Per series: strings as ReadOnlyMemory<char> for REQUIRED (non-null) columns, no per-group conversion by the library.
        private readonly ReadOnlyMemory<char>[] _domain, _kind, _rid, _consumer, _iface;
        private readonly double[] _jpu, _hz;
        private readonly bool[] _inTotal;
        private readonly ReadOnlyMemory<char> _jobId, _node, _user, _runId;
        private SpoolRecord[] _sorted = [];
        private readonly int[] _seriesStart;
        private long[] _ts = [], _interval = [], _raw = [];
        private double[] _energy = [], _scale = [], _rate = [];
        private bool[] _counts = [];
        private int[] _flags = [];
        private ReadOnlyMemory<char>[] _sDomain = [], _sKind = [], _sRid = [], _sConsumer = [], _sIface = [], _sJob = [], _sNode = [], _sUser = [], _sRun = [];
        private int _n;

        public RowGroupBuffers(SpoolMeta meta, ParquetValueLayout layout)
        {
            _layout = layout;
            int n = meta.Series.Count;
            _seriesStart = new int[n + 1];
            _domain = new ReadOnlyMemory<char>[n]; _kind = new ReadOnlyMemory<char>[n]; _rid = new ReadOnlyMemory<char>[n];
            _consumer = new ReadOnlyMemory<char>[n]; _iface = new ReadOnlyMemory<char>[n];
            _jpu = new double[n]; _hz = new double[n]; _inTotal = new bool[n];
            for (int i = 0; i < n; i++)
            {
                var s = meta.Series[i];
                _domain[i] = $"{s.ResourceKind}:{s.ResourceId}".AsMemory();
                _kind[i] = s.ResourceKind.AsMemory(); _rid[i] = s.ResourceId.AsMemory(); _consumer[i] = s.Consumer.AsMemory();
                _iface[i] = s.Interface.AsMemory(); _jpu[i] = s.JoulesPerUnit; _hz[i] = ReadHz(meta, s);
                _inTotal[i] = Alumet.Hpc.Core.ResourceKinds.CountsInTotal(Alumet.Hpc.Core.ResourceKinds.Parse(s.ResourceKind));
            }
            _jobId = meta.JobId.AsMemory(); _node = meta.Node.AsMemory(); _user = meta.User.AsMemory(); _runId = ParquetDataset.RunId(meta).AsMemory();
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
                int s = r.Series;
                _ts[i] = r.WallNs / 1000;
                _interval[i] = (r.IntervalNs + 500) / 1000;
                _raw[i] = r.Value;
                _scale[i] = _jpu[s];
                _energy[i] = r.Value * _jpu[s];
                _rate[i] = _hz[s];
                _counts[i] = _inTotal[s];
                _flags[i] = (int)r.Flags;
                _sDomain[i] = _domain[s]; _sKind[i] = _kind[s]; _sRid[i] = _rid[s]; _sConsumer[i] = _consumer[s]; _sIface[i] = _iface[s];
            }
            _n = n;
            return n;
        }

        private void Grow(int n)
        {
            _sorted = new SpoolRecord[n]; _ts = new long[n]; _interval = new long[n]; _raw = new long[n];
            _energy = new double[n]; _scale = new double[n]; _rate = new double[n]; _counts = new bool[n]; _flags = new int[n];
            _sDomain = new ReadOnlyMemory<char>[n]; _sKind = new ReadOnlyMemory<char>[n]; _sRid = new ReadOnlyMemory<char>[n];
            _sConsumer = new ReadOnlyMemory<char>[n]; _sIface = new ReadOnlyMemory<char>[n];
            _sJob = Filled(_jobId, n); _sNode = Filled(_node, n); _sUser = Filled(_user, n); _sRun = Filled(_runId, n);
        }

        private static ReadOnlyMemory<char>[] Filled(ReadOnlyMemory<char> value, int n)
        {
            var a = new ReadOnlyMemory<char>[n];
            Array.Fill(a, value);
            return a;
        }

        public async Task WriteAsync(ParquetWriter writer, CancellationToken ct)
        {
            int n = _n;
            using var rg = writer.CreateRowGroup();
            await rg.WriteAsync(Columns.Timestamp, new ReadOnlyMemory<long>(_ts, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.IntervalUs, new ReadOnlyMemory<long>(_interval, 0, n), null, null, ct).ConfigureAwait(false);
            await Str(rg, Columns.Domain, _sDomain, n, ct).ConfigureAwait(false);
            await Str(rg, Columns.ResourceKind, _sKind, n, ct).ConfigureAwait(false);
            await Str(rg, Columns.ResourceId, _sRid, n, ct).ConfigureAwait(false);
            await Str(rg, Columns.Consumer, _sConsumer, n, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.CountsInTotal, new ReadOnlyMemory<bool>(_counts, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.EnergyRaw, new ReadOnlyMemory<long>(_raw, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.JoulesPerUnit, new ReadOnlyMemory<double>(_scale, 0, n), null, null, ct).ConfigureAwait(false);
            if (_layout == ParquetValueLayout.Joules)
                await rg.WriteAsync(Columns.EnergyJ, new ReadOnlyMemory<double>(_energy, 0, n), null, null, ct).ConfigureAwait(false);
            await Str(rg, Columns.Interface, _sIface, n, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.ReadHz, new ReadOnlyMemory<double>(_rate, 0, n), null, null, ct).ConfigureAwait(false);
            await rg.WriteAsync(Columns.Flags, new ReadOnlyMemory<int>(_flags, 0, n), null, null, ct).ConfigureAwait(false);
            await Str(rg, Columns.JobId, _sJob, n, ct).ConfigureAwait(false);
            await Str(rg, Columns.Node, _sNode, n, ct).ConfigureAwait(false);
            await Str(rg, Columns.User, _sUser, n, ct).ConfigureAwait(false);
            await Str(rg, Columns.RunId, _sRun, n, ct).ConfigureAwait(false);
            rg.CompleteValidate();
        }

        private static Task Str(ParquetRowGroupWriter rg, DataField<string> f, ReadOnlyMemory<char>[] values, int n, CancellationToken ct) =>
            rg.WriteAsync(f, new ReadOnlyMemory<ReadOnlyMemory<char>>(values, 0, n), null, null, ct);
    }
}
