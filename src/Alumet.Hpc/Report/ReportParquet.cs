using Alumet.Hpc.Outputs.Parquet;

namespace Alumet.Hpc.Report;

/// <summary>
/// <c>--parquet</c>, <c>--timeline</c>, <c>--plot</c>: views of the Parquet files of the jobs the caller may see (the
/// same rows as the table, so the same access rule). Before any file is read or written the process gives up the
/// report's group (<see cref="ReportPrivilege"/>; the database is read by then).
/// </summary>
public static class ReportParquet
{
    /// <summary>Argument errors (exit 2) before the database is opened.</summary>
    public static string? CheckArguments(ReportCommand.ReportRequest req, int jobs)
    {
        if (jobs == 0) return "--parquet, --timeline and --plot need --job N";
        if (req.Timeline || req.Plot is not null)
        {
            if (jobs != 1) return "--timeline and --plot take one job: --job N";
            if (req.Plot is { } p && !(p.EndsWith(".png", StringComparison.OrdinalIgnoreCase) || p.EndsWith(".svg", StringComparison.OrdinalIgnoreCase)))
                return $"--plot {p}: the file name must end in .png or .svg";
        }
        return null;
    }

    public static int Run(ReportEnvironment env, ReportCommand.ReportRequest req, IReadOnlyList<ReportJob> jobs, IReadOnlyList<string> missing, string dbPath)
    {
        try { ReportPrivilege.Drop(); } // the database is read: files are opened, and the plot written, with the caller's rights only
        catch (UnauthorizedAccessException e) { return ReportCommand.Fail(env, e.Message, 1); }
        if (req.Parquet)
        {
            foreach (var p in jobs.SelectMany(j => j.Total.ParquetPaths).Distinct()) env.Out.WriteLine(p);
            env.Out.Flush();
        }
        if ((req.Timeline || req.Plot is not null) && jobs.Count == 1)
        {
            var job = jobs[0];
            var files = job.Total.ParquetPaths.Where(File.Exists).ToList();
            if (files.Count == 0)
                return ReportCommand.Fail(env, $"job {job.JobId} has no Parquet file ({(job.Total.ParquetPaths.Count == 0 ? $"status {job.Total.Status}" : "moved or deleted: " + string.Join(", ", job.Total.ParquetPaths))})", 1);
            PowerTimeline t;
            try { t = PowerTimeline.ReadAsync(files, ReportTimeline.MaxPeriods).GetAwaiter().GetResult(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException or NotSupportedException or ArgumentException)
            {
                return ReportCommand.Fail(env, $"cannot read the Parquet file(s) of job {job.JobId}: {e.Message.Split('\n')[0].Trim()}", 1);
            }
            if (req.Timeline)
            {
                env.Out.Write(ReportTimeline.Format(job.JobId, t));
                env.Out.Flush();
            }
            if (req.Plot is { } plotPath)
            {
                if (PowerPlot.Unavailable() is { } why) return ReportCommand.Fail(env, why, 1);
                try
                {
                    int lines = PowerPlot.Save(t, job.JobId, plotPath);
                    env.Err.WriteLine($"{ReportCommand.Name}: wrote {plotPath} ({lines} series)");
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    return ReportCommand.Fail(env, $"cannot write {plotPath}: {e.Message.Split('\n')[0].Trim()}", 1);
                }
            }
        }
        // Unlike the table (sacct exits 0), a missing job is an error here: a script asked for files that are not there.
        // Same words whether the job does not exist or belongs to someone else.
        foreach (var m in missing)
            env.Err.WriteLine($"{ReportCommand.Name}: error: job {m} not found in {dbPath}{ReportCommand.NotFoundHint(env, req)}");
        return missing.Count > 0 ? 1 : 0;
    }
}
