using Alumet.Hpc.Commands;
using Alumet.Hpc.Outputs.Parquet;
using Xunit;
using Xunit.Abstractions;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>
/// <see cref="ParquetRows.ReadAsync(string, bool, CancellationToken)"/>, which `alumet-report --timeline` and
/// `alumet-hpc parquet check` read every row of a job file through (at 1 kHz raw storage, 3.6 M rows per 10 minutes).
/// Alone (<see cref="AllocationCollection"/>): it counts the process's allocations.
/// </summary>
[Collection(AllocationCollection.Name)]
public sealed class ParquetRowsTests(ITestOutputHelper output)
{
    /// <summary>
    /// The string columns come as series: a file's rows hold a dozen distinct strings, each decoded once per file, not a
    /// string per row and column (4 × 3.6 M of them on a 10-minute raw file: most of the timeline's and the check's time).
    /// Two row groups, the same series in both.
    /// </summary>
    [Fact]
    public async Task EachDistinctStringOfAFileIsOneInstance()
    {
        using var tmp = new TempDir();
        var file = RawFile(tmp, seconds: 12);
        var instances = new HashSet<string>(ReferenceEqualityComparer.Instance);
        var values = new HashSet<string>(StringComparer.Ordinal);
        int groups = 0;
        long rows = 0;
        await foreach (var g in ParquetRows.ReadAsync(file, noFollow: false))
        {
            groups++;
            rows += g.Count;
            foreach (var column in new[] { g.Consumer, g.ResourceKind, g.ResourceId, g.Node })
                for (int i = 0; i < g.Count; i++) { instances.Add(column[i]); values.Add(column[i]); }
            for (int i = 0; i < g.Count; i++) { instances.Add(g.Domain(i)); values.Add(g.Domain(i)); }
        }
        Assert.Equal(2, groups);
        output.WriteLine($"{rows} rows, {values.Count} distinct strings, {instances.Count} instances");
        Assert.Equal(values.Count, instances.Count);
    }

    /// <summary>
    /// A row group's columns are the reader's buffers, reused from one group to the next: reading a raw file allocates
    /// what Parquet.Net decodes its pages into (most of the 93 B per row measured here), not also a new array per column
    /// and group (~44 B per row more) nor a string per row and string column (270 B per row before, 2026-12-02).
    /// </summary>
    [Fact]
    public async Task ReadingARawFileAllocatesLessThan128BytesPerRow()
    {
        using var tmp = new TempDir();
        var file = RawFile(tmp, seconds: 24);
        for (int warm = 0; warm < 2; warm++) await Sum(file);
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var (rows, _) = await Sum(file);
        long bytes = GC.GetTotalAllocatedBytes(precise: true) - before;
        double perRow = (double)bytes / rows;
        output.WriteLine($"{rows} rows, {bytes} bytes allocated, {perRow:F1} per row");
        Assert.True(perRow < 128, $"{perRow:F1} bytes allocated per row ({bytes} for {rows} rows)");
    }

    private static async Task<(long Rows, long Raw)> Sum(string file)
    {
        long rows = 0, raw = 0;
        await foreach (var g in ParquetRows.ReadAsync(file, noFollow: false))
        {
            rows += g.Count;
            for (int i = 0; i < g.Count; i++) raw += g.EnergyRaw![i] + g.Flags[i] + g.SeriesOf[i];
        }
        return (rows, raw);
    }

    private static string RawFile(TempDir tmp, int seconds)
    {
        TestSpools.RealRaw(tmp.Sub("spool"), seconds);
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(0, ParquetCommand.Export(tmp.Sub("spool"), tmp.Sub("job.parquet"), "raw", o, e));
        return tmp.Sub("job.parquet");
    }
}
