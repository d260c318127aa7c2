using Alumet.Hpc.Commands;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Sampling;

namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// The invariant every spool and file keeps (README "Parquet schema"): for every domain and every interval,
/// node = Σ job:* + other_jobs + unattributed, exactly on the stored integers. The one check the tests make of it.
/// </summary>
public static class Conservation
{
    /// <summary>
    /// Every interval of <paramref name="path"/> conserves, and it holds exactly <paramref name="intervals"/> of them
    /// (domain × period; null where real clocks decide how many periods there are: at least one).
    /// <para>A <c>.parquet</c> file goes through <c>alumet-hpc parquet check</c> (<see cref="ParquetCommand.Check"/>): exit 0
    /// and the file "ok" with that many intervals; 0 intervals: the file of a job that shared the node, its own share only,
    /// which the command leaves "unchecked" (and nothing else).</para>
    /// <para>A spool directory (a node's day, aggregated storage) is read record by record, an interval being one end
    /// time and one domain: exactly one node row, every other row a job's share, other_jobs or unattributed, and node =
    /// their sum.</para>
    /// </summary>
    public static void AssertEveryInterval(string path, int? intervals)
    {
        if (path.EndsWith(".parquet", StringComparison.Ordinal)) AssertParquet(path, intervals);
        else AssertSpool(path, intervals);
    }

    private static void AssertParquet(string file, int? intervals)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = ParquetCommand.Check([file], o, e);
        Assert.True(code == 0 && e.ToString() == "", $"exit {code}: {o}{e}");
        string[] lines = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        if (intervals == 0)
        {
            Assert.StartsWith($"unchecked: {file}: no node series (the job shared the node): its own share only, ", lines[0]);
            Assert.Equal("1 file(s): 0 conserve, 0 violate, 1 with nothing to check, 0 unreadable", lines[1]);
            return;
        }
        if (intervals is { } n) Assert.StartsWith($"ok: {file}: {n} interval(s) over ", lines[0]);
        else Assert.Matches($"^ok: {System.Text.RegularExpressions.Regex.Escape(file)}: [1-9][0-9]* interval\\(s\\) over ", lines[0]);
        Assert.Equal("1 file(s): 1 conserve, 0 violate, 0 with nothing to check, 0 unreadable", lines[1]);
    }

    private static void AssertSpool(string dir, int? intervals)
    {
        var byInterval = NodeSamplerTests.Rows(dir).GroupBy(x => (x.R.WallNs, x.Resource)).ToList();
        foreach (var interval in byInterval)
        {
            var node = interval.Where(x => x.Consumer == SpoolSeries.NodeConsumer).ToList();
            Assert.True(node.Count == 1, $"{dir} {interval.Key}: {node.Count} node row(s)");
            var other = interval.Select(x => x.Consumer).FirstOrDefault(c => c != SpoolSeries.NodeConsumer && !IsPart(c));
            Assert.True(other is null, $"{dir} {interval.Key}: a {other} row beside the split");
            long parts = interval.Where(x => IsPart(x.Consumer)).Sum(x => x.R.Value);
            Assert.True(node[0].R.Value == parts, $"{dir} {interval.Key}: node {node[0].R.Value} != Σ jobs + unattributed {parts}");
        }
        if (intervals is { } n) Assert.Equal(n, byInterval.Count);
        else Assert.NotEmpty(byInterval);
    }

    private static bool IsPart(string consumer) =>
        consumer == SpoolSeries.UnattributedConsumer || consumer == SpoolSeries.OtherJobsConsumer
        || consumer.StartsWith(SpoolSeries.JobConsumerPrefix, StringComparison.Ordinal);
}
