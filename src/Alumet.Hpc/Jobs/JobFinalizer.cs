using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Native;
using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Outputs.Parquet;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// Turns a job's spool into its Parquet file and accounting row. Run by the sampler at its end, or by the
/// epilog for a sampler that crashed or hung: the spool is the same either way, and the row is upserted, so
/// running it twice changes nothing.
/// </summary>
public static class JobFinalizer
{
    public sealed record Outcome(string Status, string Reason, string ParquetPath, JobRecord Record);

    public static Outcome Finalize(string stateDir, AlumetConfig cfg, bool complete, string reason)
    {
        var meta = SpoolWriter.ReadMeta(stateDir);
        var options = SummaryOptions.FromConfig(cfg);
        foreach (var problem in options.Carbon.Problems) Log.Warn($"job {meta.JobId}: {problem}");
        var summary = JobSummary.FromSpool(stateDir, options);
        string status = complete ? JobStatus.Complete : JobStatus.Partial;
        if (summary.Job.WrapAmbiguous > 0 && complete)
            reason = Join(reason, $"{summary.Job.WrapAmbiguous} interval(s) may hide extra counter wraps: energy is a lower bound");
        if (summary.Job.ReadErrors > 0)
            reason = Join(reason, $"{summary.Job.ReadErrors} interval(s) with counter read errors");
        if (summary.Job.Implausible > 0)
        {
            // A rejected reading is energy not measured: the row says so rather than counting a reset as a wrap.
            reason = Join(reason, $"{summary.Job.Implausible} interval(s) held an impossible counter jump (a reset, or more than max_power_w) that was rejected, not counted");
            if (status == JobStatus.Complete) status = JobStatus.Partial;
        }
        if (summary.Job.Samples == 0)
        {
            status = JobStatus.NotMeasured;
            reason = Join(reason, "no sample was recorded");
        }

        // One directory per job, so every node of a multi-node job lands beside the others on a shared filesystem.
        string parquet = ParquetExporter.DefaultPath(cfg.Paths.DataDir, meta);
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(parquet)!);
            var layout = cfg.Sampler.ParquetValues == "raw" ? ParquetValueLayout.RawCounts : ParquetValueLayout.Joules;
            ParquetExporter.ExportAsync(stateDir, parquet, new ParquetExportOptions(FileMode: UnixFileMode.UserRead, Layout: layout,
                ExtraMetadata: QualityMetadata.For(summary)))
                .GetAwaiter().GetResult();
            GiveToJobUser(parquet, meta.Uid);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Error($"job {meta.JobId}: Parquet export to {parquet} failed: {e.Message}; the spool stays in {stateDir}");
            reason = Join(reason, $"Parquet export failed ({e.Message}); spool kept in {stateDir}");
            parquet = "";
            if (status == JobStatus.Complete) status = JobStatus.Partial;
        }

        var record = JobRecord.FromSummary(summary, meta, status, reason, parquet);
        using (var db = AccountingDb.Open(cfg.Paths.Database))
            db.Upsert(record);
        File.WriteAllText(Path.Combine(stateDir, SamplerFiles.Finalized), reason.Length == 0 ? status : $"{status}: {reason}");
        return new Outcome(status, reason, parquet, record);
    }

    /// <summary>Records that a job ran here and was not measured (prolog never ran, sampler never started ...).</summary>
    public static JobRecord RecordNotMeasured(JobIdentity job, AlumetConfig cfg, string reason)
    {
        var record = JobRecord.NotMeasured(job, reason, toolVersion: ToolInfo.Version);
        using var db = AccountingDb.Open(cfg.Paths.Database);
        db.Upsert(record);
        return record;
    }

    /// <summary>The job's user reads their own file (owner, mode 0400); other users cannot; root reads all. Root-only: skipped otherwise.</summary>
    private static void GiveToJobUser(string path, int uid)
    {
        if (uid < 0 || Libc.getuid() != 0) return;
        if (Libc.chown(path, uid, 0) != 0)
            Log.Warn($"chown {path} to uid {uid} failed: the job's user may not be able to read it");
    }

    private static string Join(string a, string b) => a.Length == 0 ? b : $"{a}; {b}";
}
