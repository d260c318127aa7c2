using System.Globalization;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Outputs.Parquet;

/// <summary>Options of one export.</summary>
/// <param name="RowGroupRows">Rows per row group: bounds memory (about 100 bytes per row of the group, reused from group to group).</param>
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
/// Streaming: one row group (<see cref="ParquetExportOptions.RowGroupRows"/> records) is read, grouped and written at a
/// time through buffers reused from one group to the next (<see cref="ParquetFileWriter"/>), so memory does not grow
/// with the job. Row order: row groups in spool order; inside a group, series by series, each in time order (footer key
/// <c>row_order</c>): one series is in time order over the whole file without a sort. Encodings, measured on a real raw
/// 1 kHz file (bench/README.md "Parquet size"): strings a dictionary + RLE runs (almost free); timestamps and intervals
/// PLAIN, because the series of one tick share them and Zstd then stores them about once per tick instead of once per
/// row; energies a dictionary when they repeat (raw reads of a counter take a few hundred values).
/// </summary>
public static class ParquetExporter
{
    public const string Unit = "J";

    /// <summary>Version of the file layout below (footer key <c>schema_version</c>); 1 = files before it had the key.</summary>
    public const int SchemaVersion = 2;

    /// <summary>The file's columns, in order (README "Parquet schema" has the table).</summary>
    public static class Columns
    {
        /// <summary>End of the interval, µs since the Unix epoch, TIMESTAMP(MICROS, UTC) (DuckDB TIMESTAMPTZ, pandas datetime64[us, UTC]).</summary>
        public static readonly ParquetColumn Timestamp = new("timestamp", ParquetPhysicalType.Int64, ParquetAnnotation.TimestampMicrosUtc);
        /// <summary>
        /// Interval length on the monotonic clock, µs (power = energy / interval). Rounded from the spool's ns:
        /// RAPL and NVML counters update every ~1 ms, and the ns digits were tick jitter that cost ~2 bytes per raw row.
        /// </summary>
        public static readonly ParquetColumn IntervalUs = new("interval_us", ParquetPhysicalType.Int64, ParquetAnnotation.Int64);
        /// <summary><c>resource_kind:resource_id</c>, e.g. <c>cpu_package:0</c>, <c>gpu:0000:3b:00.0</c>.</summary>
        public static readonly ParquetColumn Domain = Str("domain");
        public static readonly ParquetColumn ResourceKind = Str("resource_kind");
        public static readonly ParquetColumn ResourceId = Str("resource_id");
        public static readonly ParquetColumn Consumer = Str("consumer");
        /// <summary>Whether this row's domain is added into TotalEnergy (package, DRAM, GPU; not cores, uncore, psys).</summary>
        public static readonly ParquetColumn CountsInTotal = new("counts_in_total", ParquetPhysicalType.Boolean);
        /// <summary>Energy over the interval in the counter's own integer unit (exact).</summary>
        public static readonly ParquetColumn EnergyRaw = new("energy_raw", ParquetPhysicalType.Int64, ParquetAnnotation.Int64);
        /// <summary>J per raw unit (1e-6 powercap µJ, 1e-3 NVML mJ): J = energy_raw × joules_per_unit.</summary>
        public static readonly ParquetColumn JoulesPerUnit = new("joules_per_unit", ParquetPhysicalType.Double);
        /// <summary><see cref="ParquetValueLayout.Joules"/> only: energy over the interval, J.</summary>
        public static readonly ParquetColumn EnergyJ = new("energy_j", ParquetPhysicalType.Double);
        public static readonly ParquetColumn Interface = Str("interface");
        /// <summary>Rate at which this row's source was read, Hz (numeric; the footer has it per source too).</summary>
        public static readonly ParquetColumn ReadHz = new("read_hz", ParquetPhysicalType.Double);
        /// <summary>1 = wrap-ambiguous (energy is a lower bound), 2 = a read failed during the interval, 4 = implausible reading rejected,
        /// 8 = the job's cgroup was gone at the interval's end (its CPU time since its previous read is not in the share),
        /// 16 = the job's cgroup was gone at the interval's end, its CPU time since its previous read taken from the scheduler's cgroup above it (the share is complete).</summary>
        public static readonly ParquetColumn Flags = new("flags", ParquetPhysicalType.Int32, ParquetAnnotation.Int32);
        public static readonly ParquetColumn JobId = Str("job_id");
        public static readonly ParquetColumn Node = Str("node");
        public static readonly ParquetColumn User = Str("user");
        /// <summary>The run of the job (SLUID, else its start time): job_id is not unique over a cluster's life.</summary>
        public static readonly ParquetColumn RunId = Str("run_id");

        private static ParquetColumn Str(string name) => new(name, ParquetPhysicalType.ByteArray, ParquetAnnotation.String);

        private static readonly ParquetColumn[] Head = [Timestamp, IntervalUs, Domain, ResourceKind, ResourceId, Consumer, CountsInTotal, EnergyRaw, JoulesPerUnit];
        private static readonly ParquetColumn[] Tail = [Interface, ReadHz, Flags, JobId, Node, User, RunId];

        public static IReadOnlyList<ParquetColumn> Schema { get; } = [.. Head, EnergyJ, .. Tail];
        public static IReadOnlyList<ParquetColumn> RawSchema { get; } = [.. Head, .. Tail];

        public static IReadOnlyList<ParquetColumn> For(ParquetValueLayout layout) => layout == ParquetValueLayout.RawCounts ? RawSchema : Schema;
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
            using (var fs = new FileStream(tmp, fsOptions))
            {
                using (var writer = new ParquetFileWriter(fs, Columns.For(options.Layout)))
                {
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
                            group.Write(writer);
                            rows += n;
                            groups++;
                        }
                    }
                    writer.Finish(FileMetadata(meta, options.ExtraMetadata, options.Layout), $"alumet-hpc version {meta.ToolVersion}");
                }
                // The rename below must never expose a file whose blocks are not on disk.
                await fs.FlushAsync(ct).ConfigureAwait(false);
                fs.Flush(flushToDisk: true);
            }
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(tmp, options.FileMode); // umask may have narrowed the create mode
            File.Move(tmp, path, overwrite: true);
            // The name on disk too before the caller removes the spool, the only other copy: data_dir is often another
            // filesystem than state_dir, and a power loss keeps no order between the two.
            if (dir is not null) Core.AtomicFile.SyncDirectory(dir);
        }
        catch (Exception e)
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            // The reason names the file being made, not this writer's temporary name (pid, random): the same failure reads
            // the same at every attempt, so a retry of a kept spool does not say it again (JobFinalizer.RetryExports).
            if (e.GetType() == typeof(IOException) && e.Message.Contains(tmp, StringComparison.Ordinal))
                throw new IOException(e.Message.Replace(tmp, path, StringComparison.Ordinal), e.HResult);
            throw;
        }
        return new ParquetExportResult(path, rows, groups, new FileInfo(path).Length);
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
            ["flags"] = "1=wrap-ambiguous (energy is a lower bound), 2=read error during the interval, 4=implausible reading rejected (counter reset or jump above max_power_w; not counted), 8=the job's cgroup was gone at the interval's end (a share: its CPU time since its previous read is not in it), 16=the job's cgroup was gone at the interval's end (a share: its CPU time since its previous read is its scheduler parent cgroup's, less the other jobs' below it: complete)",
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

    /// <summary>
    /// One row group at a time: the records grouped by series (counting sort), then one column at a time through a
    /// reused scratch array. Memory is O(row group), never O(job): about 45 bytes per row of the group.
    /// </summary>
    private sealed class RowGroupBuffers
    {
        private readonly ParquetValueLayout _layout;
        private readonly double[] _jpu, _hz;
        private readonly bool[] _inTotal;
        // String columns: a small per-file dictionary (UTF-8) and each series' index into it.
        private readonly StringColumn _domain, _kind, _rid, _consumer, _iface, _jobId, _node, _user, _runId;
        private readonly int[] _seriesStart;
        private SpoolRecord[] _sorted = [];
        private long[] _long = [];
        private double[] _double = [];
        private int[] _int = [];
        private bool[] _bool = [];
        private int _n;

        public RowGroupBuffers(SpoolMeta meta, ParquetValueLayout layout)
        {
            _layout = layout;
            int n = meta.Series.Count;
            _seriesStart = new int[n + 1];
            _jpu = new double[n]; _hz = new double[n]; _inTotal = new bool[n];
            for (int i = 0; i < n; i++)
            {
                var s = meta.Series[i];
                _jpu[i] = s.JoulesPerUnit; _hz[i] = ReadHz(meta, s);
                _inTotal[i] = Alumet.Hpc.Core.ResourceKinds.CountsInTotal(Alumet.Hpc.Core.ResourceKinds.Parse(s.ResourceKind));
            }
            _domain = new(meta.Series.Select(s => $"{s.ResourceKind}:{s.ResourceId}"));
            _kind = new(meta.Series.Select(s => s.ResourceKind));
            _rid = new(meta.Series.Select(s => s.ResourceId));
            _consumer = new(meta.Series.Select(s => s.Consumer));
            _iface = new(meta.Series.Select(s => s.Interface));
            _jobId = new(meta.Series.Select(_ => meta.JobId));
            _node = new(meta.Series.Select(_ => meta.Node));
            _user = new(meta.Series.Select(_ => meta.User));
            string runId = ParquetDataset.RunId(meta);
            _runId = new(meta.Series.Select(_ => runId));
        }

        /// <summary>Groups one chunk by series (append order kept within a series). Returns the row count.</summary>
        public int Fill(ReadOnlySpan<SpoolRecord> records)
        {
            if (_sorted.Length < records.Length)
            {
                int n0 = records.Length;
                _sorted = new SpoolRecord[n0]; _long = new long[n0]; _double = new double[n0]; _int = new int[n0]; _bool = new bool[n0];
            }
            // Counting sort by series: O(n) and stable, so each series stays in its (time) append order.
            var start = _seriesStart;
            Array.Clear(start);
            int series = start.Length - 1;
            foreach (ref readonly var r in records)
                if ((uint)r.Series < (uint)series) start[r.Series + 1]++; // a corrupt series index is skipped, never exported as garbage
            for (int i = 1; i < start.Length; i++) start[i] += start[i - 1];
            int n = start[^1];
            foreach (ref readonly var r in records)
                if ((uint)r.Series < (uint)series) _sorted[start[r.Series]++] = r;
            _n = n;
            return n;
        }

        public void Write(ParquetFileWriter w)
        {
            int n = _n;
            var rows = _sorted.AsSpan(0, n);
            w.BeginRowGroup(n);
            var l = _long.AsSpan(0, n);
            for (int i = 0; i < n; i++) l[i] = rows[i].WallNs / 1000;
            w.WriteInt64(l);
            for (int i = 0; i < n; i++) l[i] = (rows[i].IntervalNs + 500) / 1000;
            w.WriteInt64(l);
            _domain.Write(w, rows, _int);
            _kind.Write(w, rows, _int);
            _rid.Write(w, rows, _int);
            _consumer.Write(w, rows, _int);
            var b = _bool.AsSpan(0, n);
            for (int i = 0; i < n; i++) b[i] = _inTotal[rows[i].Series];
            w.WriteBoolean(b);
            for (int i = 0; i < n; i++) l[i] = rows[i].Value;
            w.WriteInt64(l, dictionary: true); // raw reads repeat a few hundred values: see ParquetFileWriter
            var d = _double.AsSpan(0, n);
            for (int i = 0; i < n; i++) d[i] = _jpu[rows[i].Series];
            w.WriteDouble(d);
            if (_layout == ParquetValueLayout.Joules)
            {
                for (int i = 0; i < n; i++) d[i] = rows[i].Value * _jpu[rows[i].Series];
                w.WriteDouble(d);
            }
            _iface.Write(w, rows, _int);
            for (int i = 0; i < n; i++) d[i] = _hz[rows[i].Series];
            w.WriteDouble(d);
            var f = _int.AsSpan(0, n);
            for (int i = 0; i < n; i++) f[i] = (int)rows[i].Flags;
            w.WriteInt32(f);
            _jobId.Write(w, rows, _int);
            _node.Write(w, rows, _int);
            _user.Write(w, rows, _int);
            _runId.Write(w, rows, _int);
            w.EndRowGroup();
        }
    }

    /// <summary>A string column whose value is a function of the series: its distinct values and each series' index.</summary>
    private sealed class StringColumn
    {
        private readonly List<byte[]> _values = [];
        private readonly int[] _bySeries;

        public StringColumn(IEnumerable<string> perSeries)
        {
            var ids = new Dictionary<string, int>(StringComparer.Ordinal);
            var by = new List<int>();
            foreach (string s in perSeries)
            {
                if (!ids.TryGetValue(s, out int id))
                {
                    id = _values.Count;
                    ids[s] = id;
                    _values.Add(System.Text.Encoding.UTF8.GetBytes(s));
                }
                by.Add(id);
            }
            _bySeries = [.. by];
        }

        public void Write(ParquetFileWriter w, ReadOnlySpan<SpoolRecord> rows, int[] scratch)
        {
            var idx = scratch.AsSpan(0, rows.Length);
            for (int i = 0; i < rows.Length; i++) idx[i] = _bySeries[rows[i].Series];
            w.WriteStrings(_values, idx);
        }
    }
}
