using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Sources.Rapl;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;
using DuckDB.NET.Data;

namespace Alumet.Hpc.Tests.Jobs;

public class JobFinalizerTests
{
    private const long Ms = 1_000_000;

    /// <summary>A finalized raw spool of one socket: package 1_000 → 4_000 → 10_000 µJ over two reads.</summary>
    internal static (TempTree Dir, AlumetConfig Cfg) RawJob(string parquetValues)
    {
        var dir = new TempTree("finalize");
        using var powercap = PowercapTree.Standard(1);
        var cfg = new AlumetConfig();
        cfg.Paths.DataDir = dir.PathOf("data");
        cfg.Paths.Database = dir.PathOf("accounting.db");
        cfg.Sampler.ParquetValues = parquetValues;
        cfg.Paths.StateDir = dir.PathOf("state");
        cfg.Sampler.StoragePeriodMs = 0; // raw: every read
        var slot = new SourceSlot(new RaplSource(PowercapDiscovery.Discover(powercap.Root).Zones), 1000, false, 1000);
        powercap.SetEnergy("intel-rapl:0", 1_000);
        var node = new NodeSampler(cfg, new SourceSet([slot], "test", "", []), 0);
        node.Register(new JobRegistration(new JobIdentity("exec", "c", "7", "root", 0, "n1"), null, null, Exclusive: true, Raw: false, 1), false, 0);
        powercap.SetEnergy("intel-rapl:0", 4_000);
        node.Buffer.Read(slot, 1 * Ms, 1_001 * Ms);
        powercap.SetEnergy("intel-rapl:0", 10_000);
        node.Buffer.Read(slot, 2 * Ms, 1_002 * Ms);
        node.Close(2 * Ms, 1_002 * Ms); // the job stays registered: its spool is what an epilog finalizes
        node.Dispose();
        slot.Source.Dispose();
        return (dir, cfg);
    }

    private static object? Scalar(string sql)
    {
        using var duck = new DuckDBConnection("Data Source=:memory:");
        duck.Open();
        using var cmd = duck.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    [Fact]
    public void RawValuesWriteTheExactIntegerCounters()
    {
        var (dir, cfg) = RawJob("raw");
        using var _ = dir;
        var outcome = JobFinalizer.Finalize(dir.PathOf("state", "exec", "7"), cfg, complete: true, "");
        Assert.Equal(JobStatus.Complete, outcome.Status);
        string file = outcome.ParquetPath;
        Assert.Equal(9_000L, Convert.ToInt64(Scalar(
            $"SELECT sum(energy_raw)::BIGINT FROM read_parquet('{file}') WHERE consumer = 'node' AND resource_kind = 'cpu_package'")));
        Assert.Equal(0.009, Convert.ToDouble(Scalar(
            $"SELECT sum(energy_raw * joules_per_unit) FROM read_parquet('{file}') WHERE consumer = 'node' AND resource_kind = 'cpu_package'")), 12);
        Assert.Equal(0.009, outcome.Record!.Energy.PackageJ, 12);
    }

    [Fact]
    public void RawIsTheDefaultAndJoulesAddsEnergyJ()
    {
        var (dir, cfg) = RawJob(new AlumetConfig().Sampler.ParquetValues);
        using var _ = dir;
        var outcome = JobFinalizer.Finalize(dir.PathOf("state", "exec", "7"), cfg, complete: true, "");
        Assert.Equal(0L, Convert.ToInt64(Scalar(
            $"SELECT count(*) FROM (DESCRIBE SELECT * FROM read_parquet('{outcome.ParquetPath}')) WHERE column_name = 'energy_j'")));
        var (dir2, cfg2) = RawJob("joules");
        using var __ = dir2;
        var joules = JobFinalizer.Finalize(dir2.PathOf("state", "exec", "7"), cfg2, complete: true, "");
        Assert.Equal(0.009, Convert.ToDouble(Scalar(
            $"SELECT sum(energy_j) FROM read_parquet('{joules.ParquetPath}') WHERE consumer = 'node' AND resource_kind = 'cpu_package'")), 12);
    }

    [Fact]
    public void FinalizingTwiceKeepsOneRow()
    {
        var (dir, cfg) = RawJob("joules");
        using var _ = dir;
        JobFinalizer.Finalize(dir.PathOf("state", "exec", "7"), cfg, complete: true, "");
        JobFinalizer.Finalize(dir.PathOf("state", "exec", "7"), cfg, complete: false, "second epilog");
        using var db = AccountingDb.OpenReadOnly(cfg.Paths.Database);
        var row = Assert.Single(db.GetJob("7"));
        Assert.Equal(JobStatus.Complete, row.Status); // a worse status never overwrites a better one
    }
}
