using System.Text.RegularExpressions;
using Alumet.Hpc.Outputs.Parquet;
using Alumet.Hpc.Spool;
using DuckDB.NET.Data;
using Xunit.Abstractions;
using static Alumet.Hpc.Tests.Outputs.TestSpools;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>
/// Runs every block of examples/queries.sql (what examples/notebook.ipynb runs) through DuckDB on a generated job and
/// a generated dataset of 120 jobs, with exact expected numbers.
/// </summary>
public sealed partial class QueriesSqlTests(ITestOutputHelper output)
{
    private const long Sec = 1_000_000_000;

    [GeneratedRegex(@"^-- name: (\S+)\s*$", RegexOptions.Multiline)]
    private static partial Regex NameLine();

    /// <summary>The blocks of examples/queries.sql by name (the notebook splits the file the same way).</summary>
    public static Dictionary<string, string> Queries()
    {
        string dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Alumet.Hpc.sln")))
            dir = Path.GetDirectoryName(dir) ?? throw new FileNotFoundException("repository root not found");
        string text = File.ReadAllText(Path.Combine(dir, "examples", "queries.sql"));
        var marks = NameLine().Matches(text);
        var result = new Dictionary<string, string>();
        for (int i = 0; i < marks.Count; i++)
        {
            int end = i + 1 < marks.Count ? marks[i + 1].Index : text.Length;
            result[marks[i].Groups[1].Value] = text[(marks[i].Index + marks[i].Length)..end].Trim();
        }
        return result;
    }

    /// <summary>
    /// A job of <paramref name="seconds"/> s at 1 s storage on socket 0: package node 50 W = job 30 + other jobs 15 +
    /// unattributed 5 for the first half, job 40 + other 5 + unattributed 5 after; DRAM node 10 = 6 + 3 + 1; psys 70 W (node, not counted).
    /// </summary>
    public static SpoolMeta KnownJob(string spoolDir, string jobId, long startNs, int seconds = 20, string user = "alice", string cluster = "lab")
    {
        var meta = Meta(jobId);
        meta.User = user;
        meta.Cluster = cluster;
        meta.StartWallNs = startNs;
        meta.StoragePeriodMs = 1000;
        string[] consumers = ["node", $"job:{jobId}", "other_jobs", "unattributed"];
        foreach (var kind in new[] { "cpu_package", "dram" })
            foreach (var c in consumers) meta.Series.Add(S(c, kind, "0"));
        meta.Series.Add(S("node", "psys", "0"));
        var records = new List<SpoolRecord>();
        for (int t = 1; t <= seconds; t++)
        {
            long w = startNs + t * Sec;
            long[] pkg = t <= seconds / 2 ? [50, 30, 15, 5] : [50, 40, 5, 5];
            long[] dram = [10, 6, 3, 1];
            for (int c = 0; c < 4; c++) records.Add(R(w, Sec, pkg[c] * 1_000_000, c));
            for (int c = 0; c < 4; c++) records.Add(R(w, Sec, dram[c] * 1_000_000, 4 + c));
            records.Add(R(w, Sec, 70_000_000, 8));
        }
        Write(spoolDir, meta, records);
        return meta;
    }

    private static void Run(DuckDBConnection con, string sql)
    {
        using var cmd = con.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    [Theory]
    [InlineData(ParquetValueLayout.RawCounts)]
    [InlineData(ParquetValueLayout.Joules)]
    public async Task JobQueriesGiveExactPowerAndEnergy(ParquetValueLayout layout)
    {
        using var tmp = new TempDir();
        var meta = KnownJob(tmp.Sub("spool"), "4242", T0);
        var res = await ParquetExporter.ExportAsync(tmp.Sub("spool"), ParquetDataset.JobFile(tmp.Sub("data"), meta, ParquetExporterTests.TestKey), new ParquetExportOptions(Layout: layout));
        var q = Queries();
        using var con = Duck();
        Run(con, $"SET VARIABLE job_files = ['{Sql(res.Path)}']");
        Run(con, "SET VARIABLE period_s = 5");
        Run(con, q["samples"]);
        Run(con, q["power_timeline"]);

        // Σ power × interval = energy, per series, to 1 µJ; the view's energy equals the exact integers.
        var check = Query(con, """
            SELECT max(abs(sum(power_w * interval_us / 1e6) - sum(energy_raw) * any_value(joules_per_unit))) OVER (),
                   count(*) OVER () FROM samples GROUP BY domain, consumer LIMIT 1
            """)[0];
        Assert.True((double)check[0]! < 1e-6, $"{check[0]}");
        Assert.Equal(9L, L(check[1]));

        var rows = Query(con, q["job_vs_node"]);
        Assert.Equal(4, rows.Count);
        var expected = new[] { (36.0, 60.0, 18.0, 6.0), (36.0, 60.0, 18.0, 6.0), (46.0, 60.0, 8.0, 6.0), (46.0, 60.0, 8.0, 6.0) };
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(new DateTime(2025, 11, 13, 2, 13, 20, DateTimeKind.Utc).AddSeconds(5 * i), ((DateTime)rows[i][0]!).ToUniversalTime());
            Assert.Equal(expected[i], (Math.Round((double)rows[i][1]!, 9), Math.Round((double)rows[i][2]!, 9), Math.Round((double)rows[i][3]!, 9), Math.Round((double)rows[i][4]!, 9)));
        }

        var energy = Query(con, q["job_energy"]).ToDictionary(r => ((string)r[0]!, (string)r[1]!), r => ((bool)r[2]!, Math.Round((double)r[3]!, 9), (double)r[4]!));
        Assert.Equal((true, 700.0, 20.0), energy[("cpu_package:0", "job:4242")]); // 10 × 30 + 10 × 40 J
        Assert.Equal((true, 120.0, 20.0), energy[("dram:0", "job:4242")]);
        Assert.Equal((false, 1400.0, 20.0), energy[("psys:0", "node")]);
        Assert.Equal(9, energy.Count);
    }

    [Fact]
    public async Task DatasetQueryReadsOnlyTheMonthsFiles()
    {
        using var tmp = new TempDir();
        string data = tmp.Sub("data");
        string[] users = ["alice", "bob", "carol"];
        var months = new[] { new DateTime(2026, 9, 3, 0, 0, 0, DateTimeKind.Utc), new DateTime(2026, 10, 3, 0, 0, 0, DateTimeKind.Utc), new DateTime(2026, 11, 3, 0, 0, 0, DateTimeKind.Utc), new DateTime(2026, 12, 3, 0, 0, 0, DateTimeKind.Utc) };
        var expectedJ = new Dictionary<string, double>();
        var expectedJobs = new Dictionary<string, int>();
        int jobs = 0, inPartition = 0;
        for (int i = 0; i < 120; i++)
        {
            string cluster = i % 5 == 0 ? "other" : "lab";
            var start = months[i % 4].AddHours(i);
            string user = users[i % 3];
            int seconds = 2 + i % 7;
            var meta = KnownJob(tmp.Sub($"spool{i}"), (1000 + i).ToString(), (start - DateTime.UnixEpoch).Ticks * 100, seconds, user, cluster);
            // Both layouts in one dataset (parquet_values may differ between nodes or over time).
            await ParquetExporter.ExportAsync(tmp.Sub($"spool{i}"), ParquetDataset.JobFile(data, meta, ParquetExporterTests.TestKey),
                new ParquetExportOptions(Layout: i % 2 == 0 ? ParquetValueLayout.RawCounts : ParquetValueLayout.Joules));
            jobs++;
            if (cluster != "lab" || start.Month != 11) continue;
            inPartition++;
            // job share of package + DRAM: first half 30 + 6 W, second half 40 + 6 W.
            double j = (seconds / 2) * 36.0 + (seconds - seconds / 2) * 46.0;
            expectedJ[user] = expectedJ.GetValueOrDefault(user) + j;
            expectedJobs[user] = expectedJobs.GetValueOrDefault(user) + 1;
        }
        Assert.True(jobs >= 100);
        // A file the query must never open: if partition pruning failed, reading it would fail the query.
        string poison = Path.Combine(data, "jobs", "cluster=lab", "year=2026", "month=10", "unreadable.parquet");
        File.WriteAllText(poison, "not a Parquet file");

        var q = Queries();
        using var con = Duck();
        Run(con, $"SET VARIABLE dataset = '{Sql(ParquetDataset.JobsGlob(data))}'");
        Run(con, "SET VARIABLE cluster = 'lab'");
        Run(con, "SET VARIABLE year = 2026");
        Run(con, "SET VARIABLE month = 11");
        var rows = Query(con, q["energy_per_user_month"]);
        Assert.Equal(expectedJ.Count, rows.Count);
        foreach (var r in rows)
        {
            string user = (string)r[0]!;
            Assert.Equal(expectedJobs[user], (int)L(r[1]));
            Assert.Equal(expectedJ[user], (double)r[2]!, 6);
            Assert.Equal(expectedJ[user] / 3.6e6, (double)r[3]!, 12);
        }

        // The files read, from DuckDB's own profile: only the partition's.
        var plan = string.Join("\n", Query(con, "EXPLAIN ANALYZE " + q["energy_per_user_month"]).Select(r => string.Join(" ", r)));
        output.WriteLine(plan);
        var files = Regex.Match(plan, @"Total Files Read:\s*(\d+)");
        Assert.True(files.Success, "no 'Total Files Read' in the profile");
        Assert.Equal(inPartition, int.Parse(files.Groups[1].Value));
    }
}
