using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Accounting;
using Xunit;
using static Alumet.Hpc.Tests.Outputs.TestSpools;

namespace Alumet.Hpc.Tests.Outputs;

public sealed class EndToEndOutputsTests
{
    [Fact]
    public async Task SummaryParquetAndRowAgreeExactly()
    {
        using var tmp = new TempDir();
        SmallSpool.Write(tmp.Sub("spool"));
        // The job-end chain (what Jobs/JobFinalizer runs): summary, Parquet, row.
        var meta = Alumet.Hpc.Spool.SpoolWriter.ReadMeta(tmp.Sub("spool"));
        var summary = JobSummary.FromSpool(tmp.Sub("spool"));
        var parquet = await Alumet.Hpc.Outputs.Parquet.ParquetExporter.ExportAsync(tmp.Sub("spool"), tmp.Sub("data/1234/n1.parquet"));
        using (var w = AccountingDb.Open(tmp.Sub("acct.db")))
        {
            Assert.True(w.Upsert(JobRecord.FromSummary(summary, meta, JobStatus.Complete, "", parquet.Path)));
            Assert.True(w.Upsert(JobRecord.FromSummary(summary, meta, JobStatus.Complete, "", parquet.Path))); // finalized twice
        }

        using var db = AccountingDb.OpenReadOnly(tmp.Sub("acct.db"));
        var row = Assert.Single(db.GetJob("1234"));
        Assert.Equal(JobStatus.Complete, row.Status);
        Assert.Equal(parquet.Path, row.ParquetPath);
        Assert.Equal(summary.Job.TotalEnergyJ, row.TotalEnergyJ);

        using var con = Duck();
        var q = Query(con, $"""
            SELECT resource_kind, sum(energy_raw)::BIGINT, sum(energy_raw * joules_per_unit)
            FROM read_parquet('{Sql(row.ParquetPath)}') WHERE consumer = 'job:1234' GROUP BY ALL
            """).ToDictionary(r => (string)r[0]!);
        // Raw integers recovered from the file equal the fixture; J equal the DB row.
        Assert.Equal(SmallSpool.RawSum(1), L(q["cpu_package"][1]));
        Assert.Equal(SmallSpool.RawSum(5), L(q["dram"][1]));
        Assert.Equal(SmallSpool.RawSum(9), L(q["gpu"][1]));
        Assert.Equal(row.Energy.PackageJ, (double)q["cpu_package"][2]!, 9);
        Assert.Equal(row.Energy.GpuJ, (double)q["gpu"][2]!, 9);
        Assert.Equal(row.TotalEnergyJ, (double)q["cpu_package"][2]! + (double)q["dram"][2]! + (double)q["gpu"][2]!, 9);
    }
}
