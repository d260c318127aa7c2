using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Accounting;
using Xunit;
using static Alumet.Hpc.Tests.Outputs.TestSpools;

namespace Alumet.Hpc.Tests.Outputs;

public sealed class JobOutputsTests
{
    [Fact]
    public async Task SummaryParquetAndRowAgreeExactly()
    {
        using var tmp = new TempDir();
        SmallSpool.Write(tmp.Sub("spool"));
        var res = await JobOutputs.FinalizeAsync(tmp.Sub("spool"), tmp.Sub("data"), tmp.Sub("acct.db"));
        Assert.True(res.RowWritten);
        Assert.Null(res.ExportError);
        Assert.Equal(Path.Combine(tmp.Sub("data"), "lab", "slurm", "1234", "1234.n1.parquet"), res.Parquet!.Path);

        using var db = AccountingDb.OpenReadOnly(tmp.Sub("acct.db"));
        var row = Assert.Single(db.GetJob("1234"));
        Assert.Equal(JobStatus.Complete, row.Status);
        Assert.Equal(res.Parquet.Path, row.ParquetPath);
        Assert.Equal(res.Summary.Job.TotalEnergyJ, row.TotalEnergyJ);

        using var con = Duck();
        var q = Query(con, $"""
            SELECT resource_kind, CAST(sum(round(value / CASE WHEN interface = 'powercap' THEN 1e-6 ELSE 1e-3 END)) AS BIGINT), sum(value)
            FROM read_parquet('{Sql(row.ParquetPath)}') WHERE consumer = 'job:1234' GROUP BY ALL
            """).ToDictionary(r => (string)r[0]!);
        // Raw integers recovered from the file equal the fixture; J equal the DB row.
        Assert.Equal(SmallSpool.RawSum(1), L(q["cpu_package"][1]));
        Assert.Equal(SmallSpool.RawSum(5), L(q["dram"][1]));
        Assert.Equal(SmallSpool.RawSum(9), L(q["gpu"][1]));
        Assert.Equal(row.Energy.PackageJ, (double)q["cpu_package"][2]!, 9);
        Assert.Equal(row.Energy.GpuJ, (double)q["gpu"][2]!, 9);
        Assert.Equal(row.TotalEnergyJ, (double)q["cpu_package"][2]! + (double)q["dram"][2]! + (double)q["gpu"][2]!, 9);

        // Finalizing twice: same single row.
        await JobOutputs.FinalizeAsync(tmp.Sub("spool"), tmp.Sub("data"), tmp.Sub("acct.db"));
        Assert.Single(db.GetJob("1234"));
    }

    [Fact]
    public async Task EmptySpoolIsNotMeasuredWithoutParquet()
    {
        using var tmp = new TempDir();
        var meta = Meta("66");
        meta.Series.Add(S("job:66", "cpu_package", "0"));
        Write(tmp.Sub("spool"), meta, []);
        var res = await JobOutputs.FinalizeAsync(tmp.Sub("spool"), tmp.Sub("data"), tmp.Sub("acct.db"));
        Assert.Null(res.Parquet);
        Assert.Equal(JobStatus.NotMeasured, res.Record.Status);
        Assert.Equal("the spool holds no sample of this job", res.Record.Reason);
        Assert.False(Directory.Exists(tmp.Sub("data")));
    }

    [Fact]
    public async Task FailedExportStillWritesAPartialRow()
    {
        using var tmp = new TempDir();
        SmallSpool.Write(tmp.Sub("spool"));
        File.WriteAllText(tmp.Sub("data"), "a file where the data directory should be");
        var res = await JobOutputs.FinalizeAsync(tmp.Sub("spool"), tmp.Sub("data"), tmp.Sub("acct.db"));
        Assert.Null(res.Parquet);
        Assert.NotNull(res.ExportError);
        using var db = AccountingDb.OpenReadOnly(tmp.Sub("acct.db"));
        var row = Assert.Single(db.GetJob("1234"));
        Assert.Equal(JobStatus.Partial, row.Status);
        Assert.StartsWith("Parquet export failed: ", row.Reason);
        Assert.Equal("", row.ParquetPath);
        Assert.Equal(816.0, row.TotalEnergyJ, 9);
    }
}
