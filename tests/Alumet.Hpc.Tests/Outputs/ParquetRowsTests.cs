using Alumet.Hpc.Commands;
using Alumet.Hpc.Outputs.Parquet;
using Xunit;
using Xunit.Abstractions;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>
/// <see cref="ParquetRows.ReadAsync(string, bool, CancellationToken)"/>, which `alumet-report --timeline` and
/// `alumet-hpc parquet check` read every row of a job file through (at 1 kHz raw storage, 3.6 M rows per 10 minutes).
/// </summary>
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

    private static string RawFile(TempDir tmp, int seconds)
    {
        TestSpools.RealRaw(tmp.Sub("spool"), seconds);
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(0, ParquetCommand.Export(tmp.Sub("spool"), tmp.Sub("job.parquet"), "raw", o, e));
        return tmp.Sub("job.parquet");
    }
}
