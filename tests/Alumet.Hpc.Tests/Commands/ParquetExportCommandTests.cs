using Alumet.Hpc.Commands;
using Alumet.Hpc.Tests.Outputs;
using Xunit;

namespace Alumet.Hpc.Tests.Commands;

public sealed class ParquetExportCommandTests
{
    [Fact]
    public void ExportsASpoolExactlyAndSaysWhatItWrote()
    {
        using var tmp = new TempDir();
        var spool = TestSpools.RealRaw(tmp.Sub("spool"), seconds: 2);
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(0, ParquetCommand.Export(tmp.Sub("spool"), tmp.Sub("job.parquet"), "raw", o, e));
        Assert.Equal("", e.ToString());
        Assert.StartsWith($"{tmp.Sub("job.parquet")}: {spool.Records} rows, 1 row groups, ", o.ToString());
        using var con = TestSpools.Duck();
        var r = TestSpools.Query(con, $"SELECT sum(energy_raw) FILTER (consumer = 'node'), count(*) FROM read_parquet('{TestSpools.Sql(tmp.Sub("job.parquet"))}')")[0];
        Assert.Equal(spool.SeriesSums.Take(6).Sum(), TestSpools.L(r[0]));
        Assert.Equal(spool.Records, TestSpools.L(r[1]));
    }

    [Fact]
    public void RefusesWhatIsNotASpoolOrABadLayoutInOneLine()
    {
        using var tmp = new TempDir();
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(2, ParquetCommand.Export(tmp.Path, tmp.Sub("x.parquet"), "raw", o, e));
        Assert.Equal($"alumet-hpc parquet export: {tmp.Path}: no meta.json: not a job's spool directory{Environment.NewLine}", e.ToString());
        e.GetStringBuilder().Clear();
        Assert.Equal(2, ParquetCommand.Export(tmp.Path, tmp.Sub("x.parquet"), "watts", o, e));
        Assert.Equal($"alumet-hpc parquet export: --values must be raw or joules, not 'watts'{Environment.NewLine}", e.ToString());
        Assert.False(File.Exists(tmp.Sub("x.parquet")));
    }
}
