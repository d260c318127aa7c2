using Alumet.Hpc.Commands;
using Alumet.Hpc.Outputs.Parquet;
using static Alumet.Hpc.Tests.Outputs.TestSpools;

namespace Alumet.Hpc.Tests.Outputs;

public sealed class ParquetRepairTests
{
    /// <summary>
    /// Golden/parquet-v1-423c89e.parquet: written by main 423c89e (before schema 2) from TestSpools.Realistic1kHz(seconds: 1)
    /// with 4000-row groups; its timestamp statistics are the µs values divided by 1000.
    /// </summary>
    private static string Fixture => Path.Combine(AppContext.BaseDirectory, "Golden", "parquet-v1-423c89e.parquet");

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void RepairFixesAnOldFileKeepingDataOwnerAndMode()
    {
        using var tmp = new TempDir();
        string dir = tmp.Sub("data/jobs/cluster=lab/year=2025/month=11");
        Directory.CreateDirectory(dir);
        string file = Path.Combine(dir, "old.parquet");
        File.Copy(Fixture, file);
        var mode = UnixFileMode.UserRead | UnixFileMode.GroupRead;
        File.SetUnixFileMode(file, mode);
        bool root = Alumet.Hpc.Native.Libc.getuid() == 0;
        if (root) Assert.Equal(0, Alumet.Hpc.Native.Libc.chown(file, 4321, 4322));
        File.CreateSymbolicLink(tmp.Sub("data/link.parquet"), file); // never followed

        using var con = Duck();
        string p = Sql(file);
        long total = L(Query(con, $"SELECT count(*) FROM read_parquet('{p}', hive_partitioning = false)")[0][0]);
        Assert.Equal(16_000, total);
        double sum = (double)Query(con, $"SELECT sum(value) FROM read_parquet('{p}', hive_partitioning = false)")[0][0]!;
        // The defect on the old file: a filter that matches every row returns none.
        Assert.Equal(0L, L(Query(con, $"SELECT count(*) FROM read_parquet('{p}', hive_partitioning = false) WHERE timestamp >= '2025-11-13 02:13:20+00'")[0][0]));

        var output = new StringWriter();
        Assert.Equal(0, ParquetCommand.Repair([tmp.Sub("data")], output, output));
        Assert.Contains($"repaired: {file}: timestamp statistics fixed in 4 of 4 row group(s) (page headers: 4)", output.ToString());
        Assert.Contains("1 file(s), 0 failed", output.ToString());

        using var con2 = Duck(); // a fresh connection: DuckDB caches Parquet metadata per connection
        Assert.Equal(total, L(Query(con2, $"SELECT count(*) FROM read_parquet('{p}', hive_partitioning = false) WHERE timestamp >= '2025-11-13 02:13:20+00'")[0][0]));
        ParquetStatisticsTests.AssertStatisticsMatchData(con2, file);
        ParquetStatisticsTests.AssertTimeFiltersCount(con2, file);
        Assert.Equal(sum, (double)Query(con2, $"SELECT sum(value) FROM read_parquet('{p}', hive_partitioning = false)")[0][0]!, 9);
        var kv = Query(con2, $"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{p}')").ToDictionary(r => (string)r[0]!, r => (string)r[1]!);
        Assert.StartsWith("alumet-hpc ", kv[ParquetRepair.RepairedKey]);
        Assert.Equal("0", kv["storage_period_ms"]); // the old keys are kept

        Assert.Equal(mode, File.GetUnixFileMode(file));
        if (root) Assert.Equal(((uint, uint)?)(4321, 4322), Alumet.Hpc.Native.Libc.StatLink(file)?.Owner);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp"));

        // Idempotent: a second run changes nothing.
        var again = new StringWriter();
        Assert.Equal(0, ParquetCommand.Repair([file], again, again));
        Assert.Contains($"ok: {file}: 4 row group(s), statistics equal the data", again.ToString());
    }

    [Fact]
    public void NewFilesAreAlreadyCorrectAndBadPathsAreClearErrors()
    {
        using var tmp = new TempDir();
        Realistic1kHz(tmp.Sub("spool"), seconds: 1);
        var res = ParquetExporter.ExportAsync(tmp.Sub("spool"), tmp.Sub("new.parquet"), new ParquetExportOptions(RowGroupRows: 3000)).GetAwaiter().GetResult();
        var output = new StringWriter();
        Assert.Equal(0, ParquetCommand.Repair([res.Path], output, output));
        Assert.Contains("ok: ", output.ToString());

        File.WriteAllText(tmp.Sub("junk.parquet"), "not parquet at all");
        var err = new StringWriter();
        Assert.Equal(1, ParquetCommand.Repair([tmp.Sub("junk.parquet")], TextWriter.Null, err));
        Assert.Contains("failed: ", err.ToString());
        Assert.Contains("not a Parquet file", err.ToString());

        var missing = new StringWriter();
        Assert.Equal(2, ParquetCommand.Repair([tmp.Sub("nope")], TextWriter.Null, missing));
        Assert.Equal($"alumet-hpc parquet repair: {tmp.Sub("nope")}: no such file or directory", missing.ToString().Trim());
    }
}
