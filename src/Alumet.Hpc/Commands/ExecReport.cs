using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Commands;

/// <summary>What <c>exec</c> prints at the end: the same report as <c>alumet-report --job</c>, plus where the data is.</summary>
internal static class ExecReport
{
    public static void Print(TextWriter w, AlumetConfig cfg, JobFinalizer.Outcome outcome)
    {
        var r = outcome.Record;
        w.WriteLine($"alumet-hpc: job {r.JobId} ({r.Status}{(outcome.Reason.Length > 0 ? ": " + outcome.Reason : "")})");
        w.WriteLine($"  total energy {r.TotalEnergyJ:0.###} J over {r.ElapsedS:0.###} s, average {r.AvePowerW:0.###} W, max {r.MaxPowerW:0.###} W");
        w.WriteLine($"  parquet: {outcome.ParquetPath}");
        w.WriteLine($"  database: {cfg.Paths.Database}");
    }
}
