using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Outputs.Parquet;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Outputs;

/// <summary>What <see cref="JobOutputs.FinalizeAsync"/> produced.</summary>
/// <param name="Parquet">Null when the export failed (the accounting row is still written, with the reason).</param>
public sealed record JobOutputResult(JobSummary Summary, JobRecord Record, ParquetExportResult? Parquet, bool RowWritten, string? ExportError);

/// <summary>
/// Job-end outputs of one spool, in the order that keeps the accounting DB honest: summary (streamed), Parquet
/// (atomic rename), then the DB row. A failed export does not lose the accounting row: the row is written with
/// status partial and the reason, and no Parquet path.
/// </summary>
public static class JobOutputs
{
    /// <param name="status">What the caller knows about the run (<see cref="JobStatus"/>); a spool without any record of the job becomes not_measured.</param>
    /// <param name="parquetPath">Where to write; default <see cref="ParquetExporter.DefaultPath"/> under <paramref name="dataDir"/>.</param>
    public static async Task<JobOutputResult> FinalizeAsync(
        string spoolDirectory, string dataDir, string databasePath,
        string status = JobStatus.Complete, string reason = "", string? parquetPath = null,
        ParquetExportOptions? options = null, CancellationToken ct = default)
    {
        var meta = SpoolWriter.ReadMeta(spoolDirectory);
        var summary = JobSummary.FromSpool(meta, SpoolReader.ReadChunks(spoolDirectory));
        if (summary.Job.Samples == 0)
        {
            status = JobStatus.NotMeasured;
            reason = reason.Length > 0 ? reason : "the spool holds no sample of this job";
        }

        ParquetExportResult? parquet = null;
        string? exportError = null;
        if (summary.Job.Samples > 0 || summary.Node.Samples > 0)
        {
            try
            {
                parquet = await ParquetExporter.ExportAsync(meta, SpoolReader.ReadChunks(spoolDirectory, (options ?? new()).RowGroupRows),
                    parquetPath ?? ParquetExporter.DefaultPath(dataDir, meta), options, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                exportError = e.Message;
                if (status == JobStatus.Complete) status = JobStatus.Partial;
                reason = Join(reason, $"Parquet export failed: {e.Message}");
            }
        }

        var record = JobRecord.FromSummary(summary, meta, status, reason, parquet?.Path ?? "");
        bool written;
        using (var db = AccountingDb.Open(databasePath))
            written = db.Upsert(record);
        return new JobOutputResult(summary, record, parquet, written, exportError);
    }

    private static string Join(string a, string b) => a.Length == 0 ? b : $"{a}; {b}";
}
