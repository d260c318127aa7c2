using Xunit;
using Alumet.Hpc.Outputs.Parquet;
using Xunit.Abstractions;

namespace Alumet.Hpc.Tests.Outputs;

public sealed class ParquetSizeTests(ITestOutputHelper output)
{
    /// <summary>
    /// Bytes per counter reading of a raw job file, on a spool shaped like a real one (<see cref="TestSpools.RealRaw"/>:
    /// jittered ticks, RAPL-quantised counters, the period's snapshot and share rows). Target (issue 8): at most 2 bytes
    /// per reading. Written by 722bf85 (Parquet.Net: DELTA_BINARY_PACKED timestamps, intervals and energies) this spool
    /// measured 4.3 B, as the real 10 s bench run did (4.34): the jitter costs each of those columns ~1 B per row.
    /// </summary>
    [Fact]
    public async Task RawJobFileIsAtMostTwoBytesPerReadingAndExact()
    {
        using var tmp = new TempDir();
        var (spool, res, perReading) = await Export(tmp, ParquetValueLayout.RawCounts, seconds: 30);
        using var con = TestSpools.Duck();
        var p = TestSpools.Sql(res.Path);
        foreach (var row in TestSpools.Query(con, $"SELECT path_in_schema, encodings, sum(total_compressed_size) FROM parquet_metadata('{p}') GROUP BY ALL ORDER BY 3 DESC"))
            output.WriteLine(string.Join(" | ", row));
        Assert.Equal(spool.Records, res.Rows);
        Assert.Equal((int)((spool.Records + 65_535) / 65_536), res.RowGroups);
        Assert.True(perReading <= 2.0, $"{perReading:F3} B per reading");

        // Exact: every series' raw integers add up to the spool's, and the job's share equals the node (exclusive).
        var sums = TestSpools.Query(con, $"""
            SELECT consumer, resource_kind, resource_id, sum(energy_raw), count(*) FROM read_parquet('{p}') GROUP BY ALL
            """).ToDictionary(r => ((string)r[0]!, (string)r[1]!, (string)r[2]!), r => TestSpools.L(r[3]));
        for (int i = 0; i < spool.Meta.Series.Count; i++)
        {
            var s = spool.Meta.Series[i];
            Assert.Equal(spool.SeriesSums[i], sums[(s.Consumer, s.ResourceKind, s.ResourceId)]);
        }
        Assert.Equal(sums[("node", "cpu_package", "0")], sums[("job:77", "cpu_package", "0")]);
        // Every reading keeps its own timestamp and interval (µs): no two rows of a series share a timestamp.
        var dup = TestSpools.Query(con, $"SELECT count(*) - count(DISTINCT (consumer, domain, timestamp)), min(interval_us) FROM read_parquet('{p}')")[0];
        Assert.Equal(0L, TestSpools.L(dup[0]));
        Assert.True(TestSpools.L(dup[1]) > 0);
    }

    /// <summary>The same spool with <c>parquet_values = "joules"</c> (adds <c>energy_j</c> DOUBLE): a size report and a bound.</summary>
    [Fact]
    public async Task JoulesLayoutSize()
    {
        using var tmp = new TempDir();
        var (spool, res, perReading) = await Export(tmp, ParquetValueLayout.Joules, seconds: 10);
        Assert.Equal(spool.Records, res.Rows);
        Assert.True(perReading < 4.0, $"{perReading:F3} B per reading");
    }

    private async Task<(TestSpools.RealRawSpool Spool, ParquetExportResult Result, double PerReading)> Export(TempDir tmp, ParquetValueLayout layout, int seconds)
    {
        var spool = TestSpools.RealRaw(tmp.Sub("spool"), seconds);
        var res = await ParquetExporter.ExportAsync(tmp.Sub("spool"), tmp.Sub("out.parquet"), new ParquetExportOptions(Layout: layout));
        double perReading = (double)res.Bytes / spool.Readings;
        output.WriteLine($"{layout}: rows={res.Rows} readings={spool.Readings} groups={res.RowGroups} bytes={res.Bytes} B/reading={perReading:F3}");
        return (spool, res, perReading);
    }
}

/// <summary>Alone (no test in parallel): it counts the process's allocations.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AllocationCollection { public const string Name = "Allocation"; }

[Collection(AllocationCollection.Name)]
public sealed class ParquetConversionMemoryTests(ITestOutputHelper output)
{
    /// <summary>
    /// The conversion's memory is bounded by its row group, not the job: exporting a spool six times longer (2 then 12
    /// row groups) allocates less than 0.2 MB more per extra row group of 64 K rows (3 bytes per row, short-lived: the
    /// column buffers are reused from one row group to the next). 722bf85 allocated ~40 MB more per
    /// 64 K-row group (Parquet.Net's column and page buffers, a string per row per string column).
    /// Peak RSS is measured by bench/parquet.sh.
    /// </summary>
    [Fact]
    public async Task ConversionMemoryDoesNotGrowWithTheJob()
    {
        using var tmp = new TempDir();
        TestSpools.RealRaw(tmp.Sub("short"), seconds: 20);
        var longSpool = TestSpools.RealRaw(tmp.Sub("long"), seconds: 120);
        var opts = new ParquetExportOptions(Layout: ParquetValueLayout.RawCounts);
        await ParquetExporter.ExportAsync(tmp.Sub("short"), tmp.Sub("warm.parquet"), opts); // first-call costs out of the way
        long a0 = GC.GetTotalAllocatedBytes(precise: true);
        await ParquetExporter.ExportAsync(tmp.Sub("short"), tmp.Sub("short.parquet"), opts);
        long a1 = GC.GetTotalAllocatedBytes(precise: true);
        var res = await ParquetExporter.ExportAsync(tmp.Sub("long"), tmp.Sub("long.parquet"), opts);
        long a2 = GC.GetTotalAllocatedBytes(precise: true);
        long shortBytes = a1 - a0, longBytes = a2 - a1;
        output.WriteLine($"allocated: 20 s {shortBytes / 1e6:F2} MB, 120 s {longBytes / 1e6:F2} MB ({res.Rows} rows, {res.RowGroups} row groups)");
        Assert.Equal(longSpool.Records, res.Rows);
        Assert.Equal(12, res.RowGroups);
        Assert.True(longBytes - shortBytes < 10 * 200_000, $"120 s allocated {(longBytes - shortBytes) / 1e6:F2} MB more than 20 s");
    }
}
