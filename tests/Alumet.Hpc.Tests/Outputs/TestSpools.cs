using Alumet.Hpc.Spool;
using DuckDB.NET.Data;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>Builds spools with known raw integers, and a scratch directory removed on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("alumet-outputs-").FullName;
    public string Sub(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

public static class TestSpools
{
    public const long T0 = 1_763_000_000_000_000_000; // 2025-11-13T02:13:20Z

    public static SpoolMeta Meta(string jobId = "1234", string node = "n1", string iface = "powercap", string model = "") => new()
    {
        ToolVersion = "0.1.0-test",
        Scheduler = "slurm",
        Cluster = "lab",
        JobId = jobId,
        User = "alice",
        Uid = 1001,
        Node = node,
        StartWallNs = T0,
        SourceHz = new() { ["rapl"] = 1000, ["nvml"] = 20 },
        StoragePeriodMs = 0,
        AttributionPeriodMs = 1000,
        AttributionMode = "cgroup-cpu-time",
        Perimeter = "RAPL package+dram, NVML GPU board",
        EstimateModel = model,
    };

    public static SpoolSeries S(string consumer, string kind, string id, string iface = "powercap", double jpu = 1e-6) => new()
    {
        Consumer = consumer, ResourceKind = kind, ResourceId = id, Interface = iface, JoulesPerUnit = jpu, Label = $"{kind}-{id}",
    };

    public static SpoolRecord R(long wallNs, long intervalNs, long value, int series, SpoolFlags flags = SpoolFlags.None) =>
        new() { WallNs = wallNs, IntervalNs = intervalNs, Value = value, Series = series, Flags = flags };

    public static void Write(string dir, SpoolMeta meta, IEnumerable<SpoolRecord> records)
    {
        using var w = new SpoolWriter(dir, meta);
        foreach (var r in records) w.Append(r);
    }

    /// <summary>
    /// A raw 1 kHz-like spool: <paramref name="sockets"/> × (package, dram), consumers node, job, other_jobs,
    /// unattributed; node energy ~60 W/package, ~8 W/dram with noise; the job share is node × a ratio that
    /// changes every second; interval jitter ±30 µs. Exactly job + other + unattributed = node per interval.
    /// </summary>
    public static (SpoolMeta Meta, long Records) Realistic1kHz(string dir, int seconds, int sockets = 2, string jobId = "77")
    {
        var meta = Meta(jobId);
        string[] consumers = ["node", $"job:{jobId}", "other_jobs", "unattributed"];
        var channels = new List<(string Kind, string Id, double Watts)>();
        for (int s = 0; s < sockets; s++) { channels.Add(("cpu_package", s.ToString(), 60)); channels.Add(("dram", s.ToString(), 8)); }
        foreach (var ch in channels)
            foreach (var c in consumers)
                meta.Series.Add(S(c, ch.Kind, ch.Id));
        var rng = new Random(42);
        long records = 0;
        using var w = new SpoolWriter(dir, meta);
        long wall = T0;
        for (int tick = 0; tick < seconds * 1000; tick++)
        {
            long interval = 1_000_000 + rng.Next(-30_000, 30_001);
            wall += interval;
            double jobRatio = 0.25 + 0.5 * ((tick / 1000) % 3) / 3.0;
            for (int c = 0; c < channels.Count; c++)
            {
                long node = (long)(channels[c].Watts * interval / 1000 * (0.9 + 0.2 * rng.NextDouble())); // µJ
                long job = (long)(node * jobRatio);
                long other = (long)(node * 0.2);
                long unattr = node - job - other;
                int baseSeries = c * consumers.Length;
                w.Append(R(wall, interval, node, baseSeries));
                w.Append(R(wall, interval, job, baseSeries + 1));
                w.Append(R(wall, interval, other, baseSeries + 2));
                w.Append(R(wall, interval, unattr, baseSeries + 3));
                records += 4;
            }
        }
        return (meta, records);
    }

    public static DuckDBConnection Duck()
    {
        var con = new DuckDBConnection("Data Source=:memory:");
        con.Open();
        return con;
    }

    public static List<object?[]> Query(DuckDBConnection con, string sql)
    {
        using var cmd = con.CreateCommand();
        cmd.CommandText = sql;
        using var rd = cmd.ExecuteReader();
        var rows = new List<object?[]>();
        while (rd.Read())
        {
            var row = new object?[rd.FieldCount];
            for (int i = 0; i < row.Length; i++) row[i] = rd.IsDBNull(i) ? null : rd.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }

    /// <summary>DuckDB returns sum(BIGINT) as HUGEINT (BigInteger).</summary>
    public static long L(object? v) => v switch
    {
        System.Numerics.BigInteger b => (long)b,
        null => throw new ArgumentNullException(nameof(v)),
        _ => Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture),
    };

    public static string Sql(string path) => path.Replace("'", "''");
}
