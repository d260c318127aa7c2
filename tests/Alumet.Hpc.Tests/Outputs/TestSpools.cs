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

    /// <summary>What <see cref="RealRaw"/> wrote: counter readings (node records) and each series' exact sum.</summary>
    public sealed record RealRawSpool(SpoolMeta Meta, long Records, long Readings, long[] SeriesSums);

    /// <summary>
    /// A spool shaped like a real exclusive job at raw storage as the sampler writes it (measured column by column on
    /// bench/run.sh's 10 s raw run): 2 sockets × (package, cores, dram) node series read at 1 kHz at the tick's time,
    /// whose lateness jitters (interval median 1000 µs, 1-99 % range ~920-1080 µs, with a long tail); counters advanced
    /// like RAPL — an update every ~1 ms of P ± 5 % in 2^-14 J steps, read as powercap µJ (bench/advance.c: 110, 70,
    /// 12 W); once per attribution period (1 s) a snapshot read of every counter a few µs after the tick, and per
    /// channel the job's share (= node: exclusive) and unattributed (0) over the period. Deterministic (seeded).
    /// </summary>
    public static RealRawSpool RealRaw(string dir, int seconds, string jobId = "77", int seed = 7)
    {
        var meta = Meta(jobId);
        meta.AttributionMode = "exclusive";
        var domains = new List<(string Kind, string Id, double Watts)>();
        for (int s = 0; s < 2; s++) { domains.Add(("cpu_package", $"{s}", 110)); domains.Add(("cpu_cores", $"{s}", 70)); domains.Add(("dram", $"{s}", 12)); }
        foreach (var d in domains) meta.Series.Add(S("node", d.Kind, d.Id));
        foreach (var d in domains) { meta.Series.Add(S($"job:{jobId}", d.Kind, d.Id)); meta.Series.Add(S("unattributed", d.Kind, d.Id)); }
        var rng = new Random(seed);
        int ch = domains.Count;
        var units = new long[ch];            // RAPL counter, 2^-14 J
        var lastUj = new long[ch];           // last reading, µJ
        var periodUj = new long[ch];
        var sums = new long[meta.Series.Count];
        long records = 0, readings = 0;
        const long Ms = 1_000_000;
        long wall0 = T0 / 100 * 100, nextUpdate = Ms / 2, lastRead = 0, periodStart = 0;
        using var w = new SpoolWriter(dir, meta);
        long Uj(long u) => u * 1_000_000 / 16384;
        void Advance(long until)
        {
            for (; nextUpdate <= until; nextUpdate += Ms - 15_000 + rng.Next(30_001))
                for (int c = 0; c < ch; c++)
                    units[c] += (long)Math.Round(domains[c].Watts * 1e-3 * (0.95 + 0.1 * rng.NextDouble()) * 16384);
        }
        void Read(long at)
        {
            Advance(at);
            long wall = (wall0 + at) / 100 * 100; // the sampler's wall clock has 100 ns steps
            for (int c = 0; c < ch; c++)
            {
                long now = Uj(units[c]), e = now - lastUj[c];
                lastUj[c] = now;
                periodUj[c] += e;
                w.Append(R(wall, at - lastRead, e, c));
                sums[c] += e;
            }
            records += ch; readings += ch;
            lastRead = at;
        }
        for (int tick = 1; tick <= seconds * 1000; tick++)
        {
            // Lateness of the tick: ~40 µs, a few µs of jitter, now and then a preemption of up to 100 µs.
            long late = 40_000 + (long)(-6_000 * Math.Log(1 - rng.NextDouble())) + (rng.Next(40) == 0 ? rng.Next(20_000, 100_000) : 0);
            Read(tick * Ms + late);
            if (tick % 1000 != 0) continue;
            Read(lastRead + rng.Next(5_000, 50_000)); // the period's snapshot
            long wall = (wall0 + lastRead) / 100 * 100;
            for (int c = 0; c < ch; c++)
            {
                w.Append(R(wall, lastRead - periodStart, periodUj[c], ch + 2 * c));
                w.Append(R(wall, lastRead - periodStart, 0, ch + 2 * c + 1));
                sums[ch + 2 * c] += periodUj[c];
                periodUj[c] = 0;
                records += 2;
            }
            periodStart = lastRead;
        }
        return new RealRawSpool(meta, records, readings, sums);
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
