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
        Print(w, cfg, outcome.Record.JobId, outcome.Record.Cluster, outcome.ParquetPath);
    }

    /// <summary>The report of job <paramref name="jobId"/> from the database; the Parquet line when the file was written.</summary>
    public static void Print(TextWriter w, AlumetConfig cfg, string jobId, string cluster, string parquetPath)
    {
        var env = new ReportEnvironment(0, true, cfg.Paths.Database, w, w); // our own job: no access filter needed
        ReportCommand.Run(["--job", jobId, "--cluster", cluster], env);
        if (parquetPath.Length > 0 && File.Exists(parquetPath)) w.WriteLine($"Parquet: {parquetPath}");
        w.WriteLine($"Database: {cfg.Paths.Database} (alumet-report --job {jobId})");
    }
}
