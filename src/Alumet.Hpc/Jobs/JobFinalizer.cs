using System.Text.Json;
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
/// running it twice changes nothing. One finalizer per job at a time (<see cref="FinalizationLock"/>): a second
/// one waits, then finds the job finalized and does nothing. Once the Parquet file and the row are written the
/// state dir is removed and a short marker <c>&lt;job&gt;.finalized</c> (its outcome, then its run) takes its place; a
/// state dir whose finalization failed is kept (its spool is the only copy) until <see cref="JobStateCleanup"/> ages it out.
/// </summary>
public static class JobFinalizer
{
    /// <param name="Record">The row written; null when <paramref name="Status"/> is <see cref="AlreadyStatus"/>.</param>
    /// <param name="Stored">The row reached the database; otherwise it waits in the outbox (<paramref name="Delivery"/> says why).</param>
    public sealed record Outcome(string Status, string Reason, string ParquetPath, JobRecord? Record, bool Stored = true, string Delivery = "");

    /// <summary>Status of an <see cref="Outcome"/> when another finalizer had already finalized the job.</summary>
    public const string AlreadyStatus = "already";

    /// <summary>Suffix of the marker left beside a removed state dir: <c>&lt;state_dir&gt;/&lt;scheduler&gt;/&lt;job&gt;.finalized</c>.</summary>
    public const string MarkerSuffix = ".finalized";

    public static string MarkerPath(string stateDir) => Path.TrimEndingDirectorySeparator(stateDir) + MarkerSuffix;

    /// <summary>
    /// Beside the state dir: <c>&lt;job&gt;.withdrawn</c>, written by a prolog that gave up on its registration before it
    /// returns (SamplerLauncher.Start). A sampler stalled after applying the registration and before answering drops the
    /// job and its state when it wakes (NodeSampler.Housekeep, told by <see cref="FinalizedElsewhere"/>), and the epilog
    /// records the job not_measured, as the prolog said (s11 hooks.md 2a).
    /// </summary>
    public const string WithdrawnSuffix = ".withdrawn";

    public static string WithdrawnPath(string stateDir) => Path.TrimEndingDirectorySeparator(stateDir) + WithdrawnSuffix;

    /// <summary>When the job's prolog withdrew its registration, if after <paramref name="registeredWallNs"/> (the
    /// registration's start; 0: any withdrawal), else null.</summary>
    public static DateTime? WithdrawnAfter(string stateDir, long registeredWallNs)
    {
        var written = File.GetLastWriteTimeUtc(WithdrawnPath(stateDir)); // 1601-01-01 when absent
        return written.Year > 1601 && written > Clock.FromWallNs(Math.Max(0, registeredWallNs)) ? written : null;
    }

    /// <summary>What a finished finalization of this job recorded (<c>complete</c>, <c>partial: reason</c>), or null.</summary>
    public static string? FinalizedLine(string stateDir) => Marker(stateDir)?.Line;

    /// <summary><see cref="FinalizedLine"/> when the marker is of run <paramref name="runId"/> or names none (or the run is
    /// not known: ""); null when it is another run's.</summary>
    public static string? FinalizedLine(string stateDir, string runId) =>
        Marker(stateDir) is { } m && (m.Run is null || runId.Length == 0 || m.Run == runId) ? m.Line : null;

    /// <summary>
    /// The run the finished finalization of this job recorded (the marker's last line, <c>run=</c>: <see cref="MarkerText"/>),
    /// or null: none, or a marker written by a version before 2026-12-02, which names no run.
    /// </summary>
    public static string? FinalizedRun(string stateDir) => Marker(stateDir)?.Run;

    private const string RunLine = "run=";

    /// <summary>A marker's text: the outcome line (<see cref="FinalizedLine"/>), then the run it is of, so that another
    /// run of the job id is not taken for it (SamplerLauncher.StopAndFinalize).</summary>
    private static string MarkerText(string line, string runId) => runId.Length > 0 ? $"{line}\n{RunLine}{runId}\n" : line;

    /// <summary>The job's finalized marker beside its state dir, else the <c>finalized</c> line in it (a kept state dir):
    /// its outcome and its run (null in one of an earlier version); null when neither is there.</summary>
    private static (string Line, string? Run)? Marker(string stateDir)
    {
        foreach (string path in new[] { MarkerPath(stateDir), Path.Combine(stateDir, SamplerFiles.Finalized) })
            if (MarkerFile(path) is { } marker) return marker;
        return null;
    }

    /// <summary>The outcome line and the run (null in one of an earlier version) of the marker file at <paramref name="path"/>; null when it is not there.</summary>
    internal static (string Line, string? Run)? MarkerFile(string path)
    {
        string text;
        try { text = File.ReadAllText(path).Trim(); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; }
        int last = text.LastIndexOf('\n');
        return last >= 0 && text.AsSpan(last + 1).StartsWith(RunLine, StringComparison.Ordinal)
            ? (text[..last].TrimEnd(), text[(last + 1 + RunLine.Length)..].Trim())
            : (text, null);
    }

    /// <summary>
    /// Moves the marker at <paramref name="marker"/> (the job's, or one claimed from there), which names run
    /// <paramref name="run"/>, beside the job's state as that run's (<see cref="JobStateCleanup.RunAside"/>): another run
    /// of the job id takes the job's place, and an epilog of that run, late, is still answered from it (SamplerLauncher.StopAndFinalize).
    /// </summary>
    internal static void MoveMarkerAside(string marker, string stateDir, string run) =>
        File.Move(marker, MarkerPath(JobStateCleanup.RunAside(stateDir, run)), overwrite: true); // rename(2)

    /// <summary>
    /// The marker of a job recorded not_measured by its epilog (no state dir: the prolog never registered it here),
    /// "not_measured: reason", beside where its state dir would be; the scheduler's directory is made root's only if it
    /// is not there yet (HookHost.CloseSchedulerStateDir).
    /// </summary>
    public static void MarkNotMeasured(string stateDir, string reason, string runId)
    {
        string parent = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(stateDir))!;
        if (!Directory.Exists(parent)) Directory.CreateDirectory(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        AtomicFile.WriteAllText(MarkerPath(stateDir), MarkerText($"{JobStatus.NotMeasured}: {reason}", runId));
    }

    /// <summary>Forgets an earlier run's finalization (a requeued job id starting again on this node).</summary>
    public static void ForgetFinalized(string stateDir)
    {
        File.Delete(MarkerPath(stateDir));
        File.Delete(Path.Combine(stateDir, SamplerFiles.Finalized));
        File.Delete(Path.Combine(stateDir, SamplerFiles.FinalizeError));
    }

    /// <param name="detachSpool">The epilog finalizes without the sampler, which may be hung rather than gone: the spool
    /// is first detached from it (<see cref="SpoolWriter.DetachFromWriters"/>).</param>
    /// <exception cref="IOException">The state dir does not exist, or another finalizer held the job past stop_timeout_s.</exception>
    public static Outcome Finalize(string stateDir, AlumetConfig cfg, bool complete, string reason, bool detachSpool = false)
    {
        var wait = TimeSpan.FromSeconds(cfg.Sampler.StopTimeoutS);
        using var claim = FinalizationLock.Acquire(stateDir, wait, out bool busy);
        if (FinalizedLine(stateDir) is { } done) return new Outcome(AlreadyStatus, done, "", null);
        if (claim is null)
            throw new IOException(busy
                ? $"another process is still finalizing the job in {stateDir} after {cfg.Sampler.StopTimeoutS} s; left to it"
                : $"no job state in {stateDir}");
        if (detachSpool)
        {
            // First, before anything reads the spool: a hung sampler that resumes writes at its own stale offset, over
            // the closing records and past the end, changing the spool between the row and the Parquet file or after
            // both (a kept state dir). Detached, its writes go to a file nobody reads.
            try { SpoolWriter.DetachFromWriters(stateDir); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.Warn($"{stateDir}: the spool could not be detached from its sampler ({e.Message}); finalized from it as it is");
            }
        }
        string errorFile = Path.Combine(stateDir, SamplerFiles.FinalizeError);
        if (File.Exists(errorFile))
        {
            try { reason = Join(reason, $"an earlier finalization failed ({File.ReadAllText(errorFile).Trim()})"); }
            catch (IOException) { }
        }
        Outcome outcome;
        bool removable;
        try { outcome = FinalizeLocked(stateDir, cfg, complete, reason, out removable); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Kept for the next attempt's row: the true reason survives the process that saw it. It also says the job
            // has ended (no restarted sampler takes it back: NodeSampler.Unfinished); a later job's end retries it.
            try
            {
                File.WriteAllText(errorFile, e.Message + "\n");
                MarkExportsPending(cfg.Paths.StateDir);
            }
            catch (Exception w) when (w is IOException or UnauthorizedAccessException) { }
            throw;
        }
        Conclude(stateDir, cfg, outcome, removable);
        PruneQuietly(cfg);
        return outcome;
    }

    /// <summary>After the row: the marker and the state dir's removal, or the state dir kept with its <c>finalized</c> line.
    /// The marker of an earlier run moved aside by a requeue (<see cref="JobStateCleanup.RunAside"/>) stays too: the late
    /// epilog of that run is answered from it (SamplerLauncher.StopAndFinalize); pruned by age as every marker.</summary>
    private static void Conclude(string stateDir, AlumetConfig cfg, Outcome outcome, bool removable)
    {
        string text = MarkerText((outcome.Reason.Length == 0 ? outcome.Status : $"{outcome.Status}: {outcome.Reason}") + (outcome.Stored ? "" : $" [{outcome.Delivery}]"),
            outcome.Record?.RunId ?? "");
        if (removable && cfg.Sampler.KeepState == "failed")
        {
            AtomicFile.WriteAllText(MarkerPath(stateDir), text); // first: a crash between the two leaves a marker, never a lost job
            Directory.Delete(stateDir, recursive: true);         // the lock file goes too; our kernel lock holds until disposed
            return;
        }
        if (outcome.ParquetPath.Length > 0) File.Delete(Path.Combine(stateDir, SamplerFiles.ExportPending)); // exported: nothing to retry
        AtomicFile.WriteAllText(Path.Combine(stateDir, SamplerFiles.Finalized), text);
    }

    /// <summary>In <c>state_dir</c>: a job's Parquet export failed and waits for <see cref="RetryExports"/> (one
    /// <c>stat</c> for the node sampler after each job's end).</summary>
    public const string ExportsPendingFile = "exports-pending";

    public static string ExportsPendingPath(string stateRoot) => Path.Combine(stateRoot, ExportsPendingFile);

    /// <summary>
    /// Exports again the kept spools whose Parquet export failed (a refused dataset key, a data_dir that refused the
    /// file), each under its job's lock: a success writes the file, rewrites the row (complete when the job ended so)
    /// and removes the spool as any finalization does; the same failure again is not said again. Finalizes, the same
    /// way, the ended jobs whose finalization failed (<see cref="SamplerFiles.FinalizeError"/>: no row yet). Run after a
    /// later job's end on the node (<see cref="NodeSampler.End"/>). Returns how many files were written.
    /// </summary>
    public static int RetryExports(AlumetConfig cfg)
    {
        string flag = ExportsPendingPath(cfg.Paths.StateDir);
        if (!File.Exists(flag)) return 0;
        File.Delete(flag); // first: an export failing from here on sets it again, after its own file (seen below or next time)
        int exported = 0;
        foreach (string scheduler in Schedulers.SchedulerNames.All)
        {
            List<string> jobs;
            try { jobs = Directory.EnumerateDirectories(Path.Combine(cfg.Paths.StateDir, scheduler)).ToList(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            foreach (string dir in jobs)
            {
                string pending = Path.Combine(dir, SamplerFiles.ExportPending);
                if (File.Exists(pending))
                {
                    if (RetryExport(dir, cfg) is { ParquetPath.Length: > 0 }) exported++;
                    else if (File.Exists(pending)) MarkExportsPending(cfg.Paths.StateDir);
                }
                else if (EndedUnfinalized(dir))
                {
                    if (RetryFinalization(dir, cfg) is { ParquetPath.Length: > 0 }) exported++;
                    else if (EndedUnfinalized(dir)) MarkExportsPending(cfg.Paths.StateDir);
                }
            }
        }
        return exported;
    }

    /// <summary>One kept spool's export again (<see cref="RetryExports"/>); null when nothing changed (its lock is held,
    /// it is no longer a kept spool, or it failed again for the reason already said).</summary>
    private static Outcome? RetryExport(string stateDir, AlumetConfig cfg)
    {
        using var claim = FinalizationLock.Acquire(stateDir, TimeSpan.Zero, out _);
        if (claim is null || FinalizedLine(stateDir) is null || ReadPending(stateDir) is not { } pending) return null;
        Outcome? outcome;
        bool removable;
        try { outcome = Record(stateDir, cfg, pending.Complete, pending.Reason, pending.Failure, out removable); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or InvalidDataException)
        {
            string why = ErrorText.Describe(e);
            if (why != pending.Failure)
            {
                Log.Error($"{stateDir}: its Parquet export could not be retried: {why}; retried again when a later job on this node ends");
                KeepForRetry(stateDir, cfg, pending with { Failure = why });
            }
            return null;
        }
        if (outcome is null) return null;
        Conclude(stateDir, cfg, outcome, removable);
        if (outcome.ParquetPath.Length > 0)
            Log.Info($"job {outcome.Record!.JobId}: Parquet export retried: {outcome.ParquetPath}; row {outcome.Status}{(outcome.Reason.Length > 0 ? " (" + outcome.Reason + ")" : "")}; {outcome.Delivery}");
        return outcome;
    }

    /// <summary>A job that ended and whose finalization failed (<see cref="SamplerFiles.FinalizeError"/>), or a run the
    /// sampler ended without one (<see cref="SamplerFiles.EndReason"/>), with no finalized line: its spool is the only
    /// copy of its data and it has no row yet.</summary>
    public static bool EndedUnfinalized(string stateDir) =>
        (File.Exists(Path.Combine(stateDir, SamplerFiles.FinalizeError)) || File.Exists(Path.Combine(stateDir, SamplerFiles.EndReason)))
        && FinalizedLine(stateDir) is null;

    /// <summary>
    /// The finalization of an ended job that failed, again (<see cref="RetryExports"/>): partial, its row saying why the
    /// first attempt failed; or the first one of a run the sampler ended without it, its row saying why it ended
    /// (<see cref="SamplerFiles.EndReason"/>, and an attempt of it that failed). Null when nothing changed (its lock is
    /// held, it was finalized meanwhile, or it failed again for the reason already recorded: said once).
    /// </summary>
    private static Outcome? RetryFinalization(string stateDir, AlumetConfig cfg)
    {
        using var claim = FinalizationLock.Acquire(stateDir, TimeSpan.Zero, out _);
        if (claim is null || !EndedUnfinalized(stateDir)) return null;
        string errorFile = Path.Combine(stateDir, SamplerFiles.FinalizeError);
        string? before = TextFile.ReadTrimmed(errorFile), ended = TextFile.ReadTrimmed(Path.Combine(stateDir, SamplerFiles.EndReason));
        if (before is null && ended is null) return null;
        string reason = ended is null ? $"its finalization at the job's end failed ({before}); finalized from its kept spool when a later job on this node ended"
            : before is null ? ended : Join(ended, $"an earlier finalization failed ({before})");
        Outcome outcome;
        bool removable;
        try { outcome = FinalizeLocked(stateDir, cfg, complete: false, reason, out removable); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or InvalidDataException)
        {
            // Recorded as Finalize records it (the message), which the next retry compares.
            if (e.Message.Trim() != (before ?? ""))
            {
                Log.Error($"{stateDir}: its finalization could not be retried: {ErrorText.Describe(e)}; retried again when a later job on this node ends");
                try { File.WriteAllText(errorFile, e.Message + "\n"); }
                catch (Exception w) when (w is IOException or UnauthorizedAccessException) { }
            }
            return null;
        }
        Conclude(stateDir, cfg, outcome, removable);
        Log.Info($"job {outcome.Record!.JobId}: finalized {outcome.Status} from its kept spool ({outcome.Reason}), {outcome.ParquetPath}; {outcome.Delivery}");
        return outcome;
    }

    /// <summary>What a finalization whose export failed was asked: the retry's row is the one it would have written.</summary>
    /// <param name="Failure">Why the export failed last: the same failure at a retry is not said again.</param>
    public sealed record PendingExport(bool Complete, string Reason, string Failure);

    private static PendingExport? ReadPending(string stateDir)
    {
        string path = Path.Combine(stateDir, SamplerFiles.ExportPending);
        try { return JsonSerializer.Deserialize(File.ReadAllText(path), FinalizerJsonContext.Default.PendingExport); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { return null; }
        catch (JsonException)
        {
            // Written whole or not at all (AtomicFile): only a hand edit gets here. Said once: removed.
            Log.Warn($"{path} is not what a finalization writes; removed: the export of the spool it stands beside is no longer retried");
            File.Delete(path);
            return null;
        }
    }

    /// <summary>Leaves <paramref name="pending"/> beside the kept spool, then the node's flag that something is pending.</summary>
    private static void KeepForRetry(string stateDir, AlumetConfig cfg, PendingExport pending)
    {
        try
        {
            AtomicFile.WriteAllText(Path.Combine(stateDir, SamplerFiles.ExportPending), JsonSerializer.Serialize(pending, FinalizerJsonContext.Default.PendingExport));
            MarkExportsPending(cfg.Paths.StateDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Warn($"{stateDir}: its Parquet export cannot be retried later ({ErrorText.Describe(e)}); the spool stays");
        }
    }

    internal static void MarkExportsPending(string stateRoot) => AtomicFile.WriteAllText(ExportsPendingPath(stateRoot), "");

    private static Outcome FinalizeLocked(string stateDir, AlumetConfig cfg, bool complete, string reason, out bool removable)
    {
        // At raw storage the tick stores each read once, in the node's spool: the reads of the windows in which the job
        // was alone or exclusive are copied into its spool first (once: a second finalization finds them there), so
        // everything below, and a kept state dir, has the records the job's file is made of (NodeReadWindows).
        foreach (string missing in NodeReadWindows.CopyIn(stateDir))
        {
            Log.Warn($"{stateDir}: {missing}");
            reason = Join(reason, missing);
        }
        if (!complete)
        {
            // The sampler died or hung between two snapshots: at raw storage its spool can end in node reads no split
            // covered. Recorded as unattributed first, as a sampler that reopens a spool does (SeriesSpool), so the
            // job's file conserves in every interval. The sampler's own End closes the period: nothing to do then.
            try { SeriesSpool.CloseUnsplitReads(stateDir); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.Warn($"{stateDir}: the node reads after the last split could not be recorded as unattributed ({e.Message}); exported as they are");
                reason = Join(reason, $"the node reads after the last split could not be closed ({e.Message}): the last interval of the file does not conserve");
            }
        }
        return Record(stateDir, cfg, complete, reason, failedBefore: null, out removable)!;
    }

    /// <summary>
    /// The job's summary, Parquet file and row, from its closed spool. A failed export keeps the spool and leaves what was
    /// asked beside it (<see cref="SamplerFiles.ExportPending"/>) for <see cref="RetryExports"/>, which passes the failure
    /// recorded there as <paramref name="failedBefore"/>: the same failure again returns null (said once; the row stays).
    /// </summary>
    private static Outcome? Record(string stateDir, AlumetConfig cfg, bool complete, string reason, string? failedBefore, out bool removable)
    {
        removable = false;
        string asked = reason;
        var meta = SpoolWriter.ReadMeta(stateDir);
        // A key still refused is known before the spool is read: a retry after every job's end costs an open, not a summary.
        if (failedBefore is not null && NameRefusal(cfg, meta) == failedBefore) return null;
        var options = SummaryOptions.FromConfig(cfg);
        foreach (var problem in options.Carbon.Problems) Log.Warn($"job {meta.JobId}: {problem}");
        var summary = JobSummary.FromSpool(stateDir, options);
        string status = complete ? JobStatus.Complete : JobStatus.Partial;
        if (summary.Job.WrapAmbiguous > 0 && complete)
            reason = Join(reason, $"{summary.Job.WrapAmbiguous} interval(s) may hide extra counter wraps: energy is a lower bound");
        if (summary.Job.ReadErrors > 0)
            reason = Join(reason, $"{summary.Job.ReadErrors} interval(s) with counter read errors");
        if (summary.Job.CgroupGonePeriods > 0)
            reason = Join(reason, $"the job's cgroup was removed before its end: {summary.Job.CgroupGonePeriods} period(s) of its share miss its CPU time since the read before (that energy is in unattributed): energy is a lower bound");
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

        // Wall-side energy from the node's calibration model, when the node has one (README "Wall-side energy").
        var wall = Calibration.WallSideEnergy.ForJob(summary, meta.AttributionMode, cfg.Calibration.Dir, meta.Node, out _);

        // The cluster's hive-partitioned dataset (README "Parquet dataset"): one file per job, node and run.
        string parquet = "";
        try
        {
            parquet = ParquetDataset.JobFile(cfg.Paths, meta); // inside: a refused name key is an export failure (the row says why)
            ParquetDataset.CreateDirectories(cfg.Paths.DataDir, parquet, ParquetDataset.JobDirMode);
            RemoveTempsOfKilledFinalizers(parquet);
            var layout = cfg.Sampler.ParquetValues == "raw" ? ParquetValueLayout.RawCounts : ParquetValueLayout.Joules;
            ParquetExporter.ExportAsync(stateDir, parquet, new ParquetExportOptions(FileMode: ParquetDataset.FileMode, Layout: layout,
                ExtraMetadata: QualityMetadata.For(summary).Concat(wall?.Metadata() ?? []).ToDictionary()))
                .GetAwaiter().GetResult();
            GiveToJobUser(parquet, meta.Uid);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (e.Message == failedBefore) return null;
            Log.Error($"job {meta.JobId}: Parquet export{(parquet.Length > 0 ? $" to {parquet}" : "")} failed: {e.Message}; the spool stays in {stateDir} and is exported again when a later job on this node ends");
            reason = Join(reason, $"Parquet export failed ({e.Message}); spool kept in {stateDir}, exported again when a later job on this node ends");
            parquet = "";
            if (status == JobStatus.Complete) status = JobStatus.Partial;
            KeepForRetry(stateDir, cfg, new PendingExport(complete, asked, e.Message)); // before the row that says so
        }

        var record = JobRecord.FromSummary(summary, meta, status, reason, parquet);
        if (wall is not null)
            record = record with { WallModelEnergyJ = wall.EnergyJ, WallModelUncertaintyJ = wall.UncertaintyJ, WallModel = wall.Model.Describe() };
        // Durable in the node's outbox first; the database gets at most hook_wait_s here (busy or down: the row
        // stays queued and is retried), so neither a sampler nor an epilog is held by the database.
        var (delivery, text) = Outbox.Deliver(record, cfg, TimeSpan.FromSeconds(cfg.Database.HookWaitS));
        bool stored = delivery.Left == 0;
        if (!stored) Log.Warn($"job {meta.JobId}: {text}");
        // Without its Parquet file the spool is the job's only data; records set aside for an unreadable meta.json
        // (SeriesSpool) are data no file holds: either way the state dir is kept, until state_max_age_h.
        removable = parquet.Length > 0 && !Directory.EnumerateFiles(stateDir, SeriesSpool.SetAsideRecordsFile + "*").Any();
        return new Outcome(status, reason, parquet, record, stored, text);
    }

    /// <summary>Why the job's file name cannot be made (the dataset key is refused), or null.</summary>
    private static string? NameRefusal(AlumetConfig cfg, SpoolMeta meta)
    {
        try { ParquetDataset.JobFile(cfg.Paths, meta); return null; }
        catch (IOException e) { return e.Message; }
    }

    /// <summary>
    /// Temporary Parquet files of a finalizer killed mid-export (kill -9 past stop_timeout_s). The caller holds the
    /// job's lock and the file name holds the node, so nobody else is writing one of these.
    /// </summary>
    private static void RemoveTempsOfKilledFinalizers(string parquet)
    {
        foreach (string f in Directory.EnumerateFiles(Path.GetDirectoryName(parquet)!))
            if (AtomicFile.IsTempOf(f, parquet)) File.Delete(f);
    }

    private static void PruneQuietly(AlumetConfig cfg)
    {
        try { JobStateCleanup.Prune(cfg, DateTime.UtcNow); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { Log.Warn($"state cleanup under {cfg.Paths.StateDir}: {e.Message}"); }
    }

    /// <summary>Records that a job ran here and was not measured (prolog never ran, sampler never started ...).</summary>
    public static JobRecord RecordNotMeasured(JobIdentity job, AlumetConfig cfg, string reason)
    {
        var record = JobRecord.NotMeasured(job, reason, toolVersion: ToolInfo.Version);
        var (delivery, text) = Outbox.Deliver(record, cfg, TimeSpan.FromSeconds(cfg.Database.HookWaitS));
        if (delivery.Left > 0) Log.Warn($"job {job.JobId}: {text}");
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
