using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Parquet;
using Alumet.Hpc.Spool;
using Xunit;
using static Alumet.Hpc.Tests.Outputs.SmallSpool;
using static Alumet.Hpc.Tests.Outputs.TestSpools;

namespace Alumet.Hpc.Tests.Outputs;

public sealed class ParquetExporterTests
{
    [Fact]
    public async Task DuckDbSumsEqualSummaryPerConsumerAndDomain()
    {
        using var tmp = new TempDir();
        SmallSpool.Write(tmp.Sub("spool"));
        var summary = JobSummary.FromSpool(tmp.Sub("spool"));
        var res = await ParquetExporter.ExportAsync(tmp.Sub("spool"), tmp.Sub("job.parquet"));
        Assert.Equal(Values.Length * Series.Length, res.Rows);

        using var con = Duck();
        var rows = Query(con, $"""
            SELECT consumer, resource_kind, sum(energy_j), count(*), sum(energy_raw)
            FROM read_parquet('{Sql(res.Path)}') GROUP BY ALL ORDER BY ALL
            """);
        var byKey = rows.ToDictionary(r => ((string)r[0]!, (string)r[1]!));
        // Exact: the raw integers equal the fixture's sums.
        for (int i = 0; i < Series.Length; i++)
            Assert.Equal(RawSum(i), L(byKey[(Series[i].Consumer, Series[i].ResourceKind)][4]));
        // J per domain equal the summary (summation order differs only in the last ulp).
        Assert.Equal(summary.Job.Energy.PackageJ, (double)byKey[("job:1234", "cpu_package")][2]!, 9);
        Assert.Equal(summary.Job.Energy.DramJ, (double)byKey[("job:1234", "dram")][2]!, 9);
        Assert.Equal(summary.Job.Energy.GpuJ, (double)byKey[("job:1234", "gpu")][2]!, 9);
        Assert.Equal(summary.Node.Energy.PackageJ, (double)byKey[("node", "cpu_package")][2]!, 9);
        Assert.Equal(summary.Steps[0].Summary.Energy.PackageJ, (double)byKey[("step:1234.batch", "cpu_package")][2]!, 9);
        var total = Query(con, $"SELECT sum(energy_j) FROM read_parquet('{Sql(res.Path)}') WHERE consumer = 'job:1234' AND counts_in_total");
        Assert.Equal(summary.Job.TotalEnergyJ, (double)total[0][0]!, 9);
    }

    [Fact]
    public async Task ColumnsTypesFlagsAndTimestamps()
    {
        using var tmp = new TempDir();
        SmallSpool.Write(tmp.Sub("spool"));
        var res = await ParquetExporter.ExportAsync(tmp.Sub("spool"), tmp.Sub("job.parquet"));
        using var con = Duck();
        var types = Query(con, $"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{Sql(res.Path)}'))")
            .ToDictionary(r => (string)r[0]!, r => (string)r[1]!);
        Assert.Equal("TIMESTAMP WITH TIME ZONE", types["timestamp"]);
        Assert.Equal("DOUBLE", types["energy_j"]);
        Assert.Equal("BIGINT", types["energy_raw"]);
        Assert.Equal("BIGINT", types["interval_us"]);
        Assert.Equal("BOOLEAN", types["counts_in_total"]);
        Assert.Equal("DOUBLE", types["read_hz"]);
        Assert.Equal("INTEGER", types["flags"]);
        Assert.Equal("VARCHAR", types["consumer"]);
        Assert.Equal(["timestamp", "interval_us", "domain", "resource_kind", "resource_id", "consumer", "counts_in_total", "energy_raw", "joules_per_unit",
            "energy_j", "interface", "read_hz", "flags", "job_id", "node", "user", "run_id"], types.Keys);

        var r = Query(con, $"""
            SELECT min(epoch_us(timestamp)), max(epoch_us(timestamp)), sum(interval_us), count(*) FILTER (flags = 1), count(*) FILTER (flags = 2),
                   string_agg(DISTINCT domain, ',' ORDER BY domain), string_agg(DISTINCT read_hz::VARCHAR, ',' ORDER BY read_hz::VARCHAR),
                   string_agg(DISTINCT job_id, ','), string_agg(DISTINCT node, ','), string_agg(DISTINCT "user", ','), string_agg(DISTINCT run_id, ','),
                   count(*) FILTER (counts_in_total), count(*) FILTER (resource_kind IN ('cpu_package', 'dram', 'gpu'))
            FROM read_parquet('{Sql(res.Path)}')
            """)[0];
        Assert.Equal((T0 + Sec) / 1000, L(r[0]));
        Assert.Equal((T0 + 3 * Sec) / 1000, L(r[1]));
        Assert.Equal(Values.Length * Series.Length * Sec / 1000, L(r[2])); // µs
        Assert.Equal(1L, L(r[3]));
        Assert.Equal(2L, L(r[4]));
        Assert.Equal("cpu_cores:0,cpu_package:0,dram:0,gpu:0000:3b:00.0,psys:0", r[5]);
        Assert.Equal("1000.0,20.0", r[6]); // RAPL rows at rapl's rate, the GPU at NVML's
        Assert.Equal("1234", r[7]);
        Assert.Equal("n1", r[8]);
        Assert.Equal("alice", r[9]);
        Assert.Equal("20251113T021320000Z", r[10]);
        Assert.Equal(L(r[12]), L(r[11]));
    }

    [Fact]
    public async Task MetadataAndDictionaryEncoding()
    {
        using var tmp = new TempDir();
        var meta = TestSpools.Meta("42", model: "generic-per-core");
        meta.Series.Add(S("node", "cpu_package", "0", "estimate"));
        meta.Series.Add(S("job:42", "cpu_package", "0", "estimate"));
        TestSpools.Write(tmp.Sub("spool"), meta, [R(T0 + Sec, Sec, 7, 0), R(T0 + Sec, Sec, 3, 1)]);
        var res = await ParquetExporter.ExportAsync(tmp.Sub("spool"), tmp.Sub("job.parquet"),
            new ParquetExportOptions(ExtraMetadata: new Dictionary<string, string> { ["partition"] = "gpu" }));
        using var con = Duck();
        var kv = Query(con, $"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{Sql(res.Path)}')")
            .ToDictionary(r => (string)r[0]!, r => (string)r[1]!);
        Assert.Equal("42", kv["job_id"]);
        Assert.Equal("lab", kv["cluster"]);
        Assert.Equal("slurm", kv["scheduler"]);
        Assert.Equal("n1", kv["node"]);
        Assert.Equal("alice", kv["user"]);
        Assert.Equal("nvml=20,rapl=1000", kv["frequency_hz"]);
        Assert.Equal("1000", kv["frequency_hz.rapl"]);
        Assert.Equal("20", kv["frequency_hz.nvml"]);
        Assert.Equal("2", kv["schema_version"]);
        Assert.Equal("estimate", kv["interfaces"]);
        Assert.Equal("true", kv["estimated"]);
        Assert.Equal("generic-per-core", kv["estimate_model"]);
        Assert.Equal("cgroup-cpu-time", kv["attribution_mode"]);
        Assert.Equal("0", kv["storage_period_ms"]);
        Assert.Equal("0.1.0-test", kv["tool_version"]);
        Assert.Equal("RAPL package+dram, NVML GPU board", kv["perimeter"]);
        Assert.Equal("gpu", kv["partition"]);

        var enc = Query(con, $"SELECT path_in_schema, encodings FROM parquet_metadata('{Sql(res.Path)}')")
            .ToDictionary(r => (string)r[0]!, r => (string)r[1]!);
        foreach (var col in new[] { "domain", "resource_kind", "resource_id", "consumer", "job_id", "node", "user", "run_id", "interface" })
            Assert.Contains("DICTIONARY", enc[col]);
        // Timestamps and intervals PLAIN: Zstd finds the series that share their ticks (ParquetFileWriter); two energies
        // do not repeat enough for a dictionary (RawJobFileIsAtMostTwoBytesPerReadingAndExact has the one that does).
        foreach (var col in new[] { "timestamp", "interval_us", "energy_raw", "flags", "read_hz" })
            Assert.Equal("PLAIN", enc[col]);
        var codecs = Query(con, $"SELECT DISTINCT compression FROM parquet_metadata('{Sql(res.Path)}')");
        Assert.Equal("ZSTD", Assert.Single(codecs)[0]);
    }

    [Fact]
    public async Task NotEstimatedFileSaysFalseAndHasNoModel()
    {
        using var tmp = new TempDir();
        SmallSpool.Write(tmp.Sub("spool"));
        var res = await ParquetExporter.ExportAsync(tmp.Sub("spool"), tmp.Sub("job.parquet"));
        using var con = Duck();
        var kv = Query(con, $"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{Sql(res.Path)}')")
            .ToDictionary(r => (string)r[0]!, r => (string)r[1]!);
        Assert.Equal("false", kv["estimated"]);
        Assert.False(kv.ContainsKey("estimate_model"));
        Assert.Equal("nvml-energy-counter,powercap", kv["interfaces"]);
    }

    [Fact]
    public async Task RawLayoutSumsExactlyAndConservesPerInterval()
    {
        using var tmp = new TempDir();
        var (_, records) = Realistic1kHz(tmp.Sub("spool"), seconds: 3);
        var res = await ParquetExporter.ExportAsync(tmp.Sub("spool"), tmp.Sub("raw.parquet"),
            new ParquetExportOptions(RowGroupRows: 10_000, Layout: ParquetValueLayout.RawCounts));
        Assert.Equal(records, res.Rows);
        Assert.Equal((int)((records + 9_999) / 10_000), res.RowGroups);
        var summary = JobSummary.FromSpool(tmp.Sub("spool"));
        using var con = Duck();
        var p = Sql(res.Path);
        // job + other_jobs + unattributed = node for every channel and interval, in raw integers.
        var broken = Query(con, $"""
            SELECT count(*) FROM (
              SELECT timestamp, resource_kind, resource_id,
                     sum(energy_raw) FILTER (consumer = 'node') AS node,
                     sum(energy_raw) FILTER (consumer <> 'node') AS parts
              FROM read_parquet('{p}') GROUP BY ALL) WHERE node <> parts
            """);
        Assert.Equal(0L, L(broken[0][0]));
        var pkg = Query(con, $"SELECT sum(energy_raw), any_value(joules_per_unit) FROM read_parquet('{p}') WHERE consumer = 'job:77' AND resource_kind = 'cpu_package' AND resource_id = '0'")[0];
        var pkg1 = Query(con, $"SELECT sum(energy_raw) FROM read_parquet('{p}') WHERE consumer = 'job:77' AND resource_kind = 'cpu_package' AND resource_id = '1'")[0];
        Assert.Equal(1e-6, (double)pkg[1]!);
        Assert.Equal(summary.Job.Energy.PackageJ, L(pkg[0]) * 1e-6 + L(pkg1[0]) * 1e-6);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task ExportWritesTmpThenRenamesWithMode()
    {
        using var tmp = new TempDir();
        SmallSpool.Write(tmp.Sub("spool"));
        string final = Path.Combine(tmp.Path, "out", "nested", "job.parquet");
        var res = await ParquetExporter.ExportAsync(tmp.Sub("spool"), final,
            new ParquetExportOptions(FileMode: UnixFileMode.UserRead | UnixFileMode.UserWrite));
        Assert.True(File.Exists(final));
        Assert.False(File.Exists(final + ".tmp"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(final));
        Assert.Equal(new FileInfo(final).Length, res.Bytes);

        var def = await ParquetExporter.ExportAsync(tmp.Sub("spool"), tmp.Sub("default.parquet"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(def.Path));
    }

    [Fact]
    public async Task InterruptedExportLeavesNoFinalFileAndKeepsThePreviousOne()
    {
        using var tmp = new TempDir();
        var meta = SmallSpool.Write(tmp.Sub("spool"));
        string final = tmp.Sub("job.parquet");
        File.WriteAllText(final, "previous");
        static IEnumerable<SpoolRecord[]> Failing()
        {
            yield return Records().ToArray();
            throw new IOException("disk gone");
        }
        await Assert.ThrowsAsync<IOException>(() => ParquetExporter.ExportAsync(meta, Failing(), final));
        Assert.Equal("previous", File.ReadAllText(final));
        Assert.False(File.Exists(final + ".tmp"));

        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => ParquetExporter.ExportAsync(tmp.Sub("spool"), tmp.Sub("c.parquet"), ct: cts.Token));
        Assert.False(File.Exists(tmp.Sub("c.parquet")));
        Assert.False(File.Exists(tmp.Sub("c.parquet.tmp")));
    }

    [Fact]
    public async Task TornTrailingRecordAndCorruptSeriesAreSkipped()
    {
        using var tmp = new TempDir();
        var meta = TestSpools.Meta("3");
        meta.Series.Add(S("job:3", "cpu_package", "0"));
        TestSpools.Write(tmp.Path, meta, [R(T0 + Sec, Sec, 11, 0), R(T0 + 2 * Sec, Sec, 99, 7 /* no such series */), R(T0 + 3 * Sec, Sec, 13, 0)]);
        File.AppendAllText(Path.Combine(tmp.Path, SpoolWriter.RecordsFile), "torn"); // crash mid-record
        var res = await ParquetExporter.ExportAsync(tmp.Path, tmp.Sub("x.parquet"), new ParquetExportOptions(Layout: ParquetValueLayout.RawCounts));
        Assert.Equal(2, res.Rows);
        using var con = Duck();
        Assert.Equal(24L, L(Query(con, $"SELECT sum(energy_raw) FROM read_parquet('{Sql(res.Path)}')")[0][0]));
        Assert.Equal(24 * 1e-6, JobSummary.FromSpool(tmp.Path).Job.TotalEnergyJ);
    }

    /// <summary>A fixed name key for tests (bytes 0 to 31).</summary>
    internal static readonly byte[] TestKey = [.. Enumerable.Range(0, DatasetKey.Length).Select(i => (byte)i)];

    /// <summary>
    /// The tags are HMAC-SHA256 computed apart from the product (notes/names.md):
    /// <c>printf '%s' 'slurm|1234|n1|20251113T021320000Z' | openssl dgst -sha256 -mac HMAC -macopt hexkey:000102…1f</c>,
    /// first 16 hex digits.
    /// </summary>
    [Fact]
    public void DatasetPathsArePartitionedKeyedAndStayInsideDataDir()
    {
        var meta = TestSpools.Meta("1234", "n1");
        Assert.Equal("/data/jobs/cluster=lab/year=2025/month=11/slurm.1234.n1.20251113T021320000Z.00f12d978fecbb62.parquet", ParquetDataset.JobFile("/data", meta, TestKey));
        meta.Cluster = "../../etc";
        meta.Node = "a/b";
        meta.JobId = "..";
        Assert.Equal("/data/jobs/cluster=_.._etc/year=2025/month=11/slurm._.a_b.20251113T021320000Z.4afb799d15da4634.parquet", ParquetDataset.JobFile("/data", meta, TestKey));
    }
}
