using Alumet.Hpc.Commands;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Outputs.Parquet;
using Alumet.Hpc.Tests.Fakes;
using DuckDB.NET.Data;
using static Alumet.Hpc.Tests.Outputs.TestSpools;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>
/// Footer statistics equal the data (issue 10): readers prune row groups on them, so a wrong min/max silently drops
/// rows from a filtered query. Checked through DuckDB, on files from exec and on multi-row-group exports.
/// </summary>
public sealed class ParquetStatisticsTests
{
    /// <summary>Every column's min/max in every row group, as DuckDB reads them from the footer, equals the data's.</summary>
    internal static void AssertStatisticsMatchData(DuckDBConnection con, string path)
    {
        string p = Sql(path);
        Exec(con, "SET TimeZone = 'UTC'");
        var groups = Query(con, $"SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata('{p}') ORDER BY 1");
        Assert.NotEmpty(groups);
        var columns = Query(con, $"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('{p}', hive_partitioning = false))");
        int checkedColumns = 0;
        foreach (var col in columns)
        {
            string name = (string)col[0]!;
            if ((string)col[1]! == "BOOLEAN") continue; // Parquet.Net writes no min/max for booleans: nothing to prune on wrongly
            var stats = Query(con, $"SELECT row_group_id, stats_min_value, stats_max_value, stats_null_count FROM parquet_metadata('{p}') WHERE path_in_schema = '{name}' ORDER BY 1");
            var data = Query(con, $"""
                WITH r AS (SELECT "{name}" AS v, file_row_number AS n FROM read_parquet('{p}', file_row_number = true)),
                     g AS (SELECT row_group_id AS id, sum(row_group_num_rows) OVER (ORDER BY row_group_id) - row_group_num_rows AS first, row_group_num_rows AS rows
                           FROM (SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata('{p}')))
                SELECT g.id, min(v)::VARCHAR, max(v)::VARCHAR, count(*) FILTER (v IS NULL)
                FROM g JOIN r ON r.n >= g.first AND r.n < g.first + g.rows GROUP BY g.id ORDER BY 1
                """);
            Assert.Equal(groups.Count, stats.Count);
            Assert.Equal(groups.Count, data.Count);
            for (int i = 0; i < stats.Count; i++)
            {
                Assert.True(stats[i][1] is not null && stats[i][2] is not null, $"{name}: row group {i} has no min/max statistics");
                Assert.Equal((data[i][1], data[i][2]), (stats[i][1], stats[i][2]));
                Assert.Equal(L(data[i][3]), L(stats[i][3]));
            }
            checkedColumns++;
        }
        Assert.True(checkedColumns >= 10, $"only {checkedColumns} columns checked");
    }

    /// <summary>A time filter returns what a filter without pushdown (an aggregate FILTER) counts: pruning lost nothing.</summary>
    internal static void AssertTimeFiltersCount(DuckDBConnection con, string path)
    {
        string p = Sql(path);
        var bounds = Query(con, $"SELECT min(timestamp), max(timestamp), count(*) FROM read_parquet('{p}')")[0];
        var lo = (DateTime)bounds[0]!;
        var hi = (DateTime)bounds[1]!;
        long total = L(bounds[2]);
        Assert.True(total > 100, $"{total} rows");
        var mid = lo + (hi - lo) / 2;
        string t = mid.ToString("yyyy-MM-dd HH:mm:ss.ffffff") + "+00";
        long expectedAfter = L(Query(con, $"SELECT count(*) FILTER (WHERE timestamp >= '{t}') FROM read_parquet('{p}')")[0][0]);
        Assert.InRange(expectedAfter, 1, total - 1);
        Assert.Equal(expectedAfter, L(Query(con, $"SELECT count(*) FROM read_parquet('{p}') WHERE timestamp >= '{t}'")[0][0]));
        Assert.Equal(total - expectedAfter, L(Query(con, $"SELECT count(*) FROM read_parquet('{p}') WHERE timestamp < '{t}'")[0][0]));
        Assert.Equal(0L, L(Query(con, $"SELECT count(*) FROM read_parquet('{p}') WHERE timestamp < '2000-01-01'")[0][0]));
        Assert.Equal(total, L(Query(con, $"SELECT count(*) FROM read_parquet('{p}') WHERE timestamp >= '{lo:yyyy-MM-dd HH:mm:ss.ffffff}+00'")[0][0]));
    }

    private static void Exec(DuckDBConnection con, string sql)
    {
        using var cmd = con.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    [Fact]
    public void ExecRawFileHasRightStatisticsAndTimeFilters()
    {
        using var install = new TestInstallation(PowercapTree.Standard(2));
        string id = ExecIds.Next();
        // Raw storage asked per command (0); the rate is the node sampler's rapl_hz (1 kHz by default), which exec as
        // root no longer overrides: it is shared by every job on the node.
        var (rc, _, stderr) = ExecBinary.Exec(install, id, ["sleep", "0.6"], storagePeriodMs: 0);
        Assert.True(rc == 0, stderr);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        string path = Assert.Single(db.GetJob(id)).ParquetPath;
        Assert.True(File.Exists(path), path);
        using var con = Duck();
        AssertTimeFiltersCount(con, path);
        AssertStatisticsMatchData(con, path);
    }

    [Theory]
    [InlineData(ParquetValueLayout.Joules)]
    [InlineData(ParquetValueLayout.RawCounts)]
    public async Task ManyRowGroupsHaveRightStatistics(ParquetValueLayout layout)
    {
        using var tmp = new TempDir();
        var (_, records) = Realistic1kHz(tmp.Sub("spool"), seconds: 2);
        var res = await ParquetExporter.ExportAsync(tmp.Sub("spool"), tmp.Sub("x.parquet"), new ParquetExportOptions(RowGroupRows: 5_000, Layout: layout));
        Assert.Equal(records, res.Rows);
        Assert.True(res.RowGroups >= 6);
        using var con = Duck();
        AssertStatisticsMatchData(con, res.Path);
        AssertTimeFiltersCount(con, res.Path);
    }
}
