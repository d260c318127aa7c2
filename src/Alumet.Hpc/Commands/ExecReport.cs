using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Report;

namespace Alumet.Hpc.Commands;

/// <summary>What <c>exec</c> prints at the end: the same report as <c>alumet-report --job</c>, plus where the data is.</summary>
internal static class ExecReport
{
    public static void Print(TextWriter w, AlumetConfig cfg, JobFinalizer.Outcome outcome)
    {
        if (outcome.Record is null) { w.WriteLine($"alumet-hpc: exec: the job was finalized by another process ({outcome.Reason})"); return; }
        var env = new ReportEnvironment(0, true, cfg.Paths.Database, w, w); // our own job: no access filter needed
        ReportCommand.Run(["--job", outcome.Record.JobId, "--cluster", outcome.Record.Cluster], env);
        w.WriteLine($"Parquet: {outcome.ParquetPath}");
        w.WriteLine($"Database: {cfg.Paths.Database} (alumet-report --job {outcome.Record.JobId})");
    }
}
