using System.Globalization;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// Keeps <c>state_dir</c> bounded. A finalized job's state dir is removed at once (<see cref="JobFinalizer"/>);
/// what stays — dirs kept by <c>keep_state = "always"</c> or for set-aside records, and the
/// <c>&lt;job&gt;.finalized</c> markers (their outcome line, then their run: JobFinalizer) — is removed here once older than <c>state_max_age_h</c>, in place or moved
/// aside by a requeue (<see cref="RunAsideInfix"/>: the same rule), but for a spool that is the only copy of a job's
/// data (its Parquet export pending, or no row yet: its finalization failed), kept whatever its age, said once; and
/// the node's day spools once exported (<see cref="PruneNodeDays"/>). Run by every finalization, so a node's own job
/// ends clean up after it.
/// </summary>
public static class JobStateCleanup
{
    /// <summary>What a day spool being removed is renamed to first (<c>&lt;day&gt;.removing-&lt;pid&gt;</c>), then deleted.</summary>
    public const string RemovingInfix = ".removing-";

    /// <summary>Written in a day spool, or a job's state dir, kept unexported past <c>state_max_age_h</c> once its warning is logged: said once, not at every finalization.</summary>
    public const string KeptLoggedFile = "kept-unexported.logged";

    /// <summary>An earlier run's state dir moved aside by a requeue is <c>&lt;job&gt;.run-&lt;run id&gt;</c> (NodeSampler), a name
    /// that is no job id: never recovered, asked for by a late epilog of that run only (SamplerLauncher.StopAndFinalize),
    /// pruned as the job's own dir; so is its marker, <c>&lt;job&gt;.run-&lt;run id&gt;.finalized</c>.</summary>
    public const string RunAsideInfix = ".run-";

    /// <summary>Where the state of run <paramref name="runId"/> of the job whose state dir is <paramref name="stateDir"/>
    /// goes when a later run of the job id takes its place (its dir, and its marker beside it: <see cref="JobFinalizer.MarkerPath"/>).</summary>
    public static string RunAside(string stateDir, string runId) => Path.TrimEndingDirectorySeparator(stateDir) + RunAsideInfix + runId;

    /// <summary>Whether <paramref name="name"/> names a job's state dir (or its marker's stem): a job id, or an earlier run
    /// of one moved aside (<see cref="RunAsideInfix"/>).</summary>
    private static bool IsJobState(string name)
    {
        int aside = name.IndexOf(RunAsideInfix, StringComparison.Ordinal);
        if (aside < 0) return Schedulers.SchedulerInput.IsJobId(name);
        var run = name.AsSpan(aside + RunAsideInfix.Length); // a run id (letters, digits), perhaps "-<ns>" after it
        return Schedulers.SchedulerInput.IsJobId(name[..aside]) && run.Length > 0 && !run.ContainsAnyExcept(RunIdChars);
    }

    private static readonly System.Buffers.SearchValues<char> RunIdChars =
        System.Buffers.SearchValues.Create("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-");

    /// <summary>Removes stale job state, then the exported day spools no job still reads; returns how many entries went.</summary>
    public static int Prune(AlumetConfig cfg, DateTime nowUtc)
    {
        var maxAge = TimeSpan.FromHours(cfg.Sampler.StateMaxAgeH);
        // Jobs first: a day kept only for a job pruned now goes in the same call.
        int removed = PruneJobs(cfg.Paths.StateDir, maxAge, nowUtc, cfg.Paths.ProcfsRoot);
        return removed + PruneNodeDays(cfg, maxAge, nowUtc);
    }

    /// <summary>Removes stale job state under every scheduler directory of <paramref name="stateRoot"/>; returns how many entries went.</summary>
    private static int PruneJobs(string stateRoot, TimeSpan maxAge, DateTime nowUtc, string procfsRoot)
    {
        int removed = 0;
        foreach (string scheduler in Schedulers.SchedulerNames.All)
        {
            string dir = Path.Combine(stateRoot, scheduler);
            IEnumerable<string> entries;
            try { entries = Directory.EnumerateFileSystemEntries(dir).ToList(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            foreach (string path in entries)
            {
                string name = Path.GetFileName(path);
                try
                {
                    if (name.EndsWith(JobFinalizer.MarkerSuffix, StringComparison.Ordinal) && IsJobState(name[..^JobFinalizer.MarkerSuffix.Length]))
                    {
                        if (nowUtc - File.GetLastWriteTimeUtc(path) > maxAge) { File.Delete(path); removed++; }
                    }
                    else if (IsJobState(name) && Directory.Exists(path) && nowUtc - NewestWrite(path) > maxAge)
                    {
                        // A spool whose Parquet export failed, or of a job with no row yet, is the only copy of the job's
                        // data (JobFinalizer.RetryExports retries both).
                        if (File.Exists(Path.Combine(path, SamplerFiles.ExportPending)))
                            SayKeptOnce(path, $"job state {path} is kept: it is older than state_max_age_h and its Parquet export is pending (its spool is the only copy; a later job's end on this node retries it)");
                        else if (JobFinalizer.EndedUnfinalized(path))
                            SayKeptOnce(path, $"job state {path} is kept: it is older than state_max_age_h and the job has no row yet (its spool is the only copy; a later job's end on this node finalizes it)");
                        else if (TryRemoveIdle(path, procfsRoot)) removed++;
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Log.Warn($"could not remove stale job state {path}: {e.Message}");
                }
            }
        }
        return removed;
    }

    /// <summary>Removes a job's state dir under its finalization lock; false when a sampler or a finalizer still uses it.</summary>
    internal static bool TryRemoveIdle(string stateDir, string procfsRoot)
    {
        if (SamplerPid.Read(stateDir) is { } pid && pid.IsAlive(procfsRoot)) return false;
        using var claim = FinalizationLock.Acquire(stateDir, TimeSpan.Zero, out _);
        if (claim is null) return false;
        Directory.Delete(stateDir, recursive: true); // the lock file goes with it; the kernel lock stays ours until disposed
        return true;
    }

    /// <summary>Newest modification in a job's state dir: the spool is written every flush while its sampler runs.</summary>
    private static DateTime NewestWrite(string dir)
    {
        var newest = Directory.GetLastWriteTimeUtc(dir);
        foreach (string f in Directory.EnumerateFiles(dir))
        {
            var t = File.GetLastWriteTimeUtc(f);
            if (t > newest) newest = t;
        }
        return newest;
    }

    /// <summary>
    /// Removes the node's closed day spools (<c>&lt;state_dir&gt;/node/&lt;yyyy-MM-dd&gt;</c>, <see cref="NodeSpool"/>) that
    /// are no longer the only copy of anything: a day that ended <see cref="NodeSpool.PruneAfter"/> ago or more (a
    /// sampler opens the day of its reads, so not one that long over), that no sampler has open (its directory's lock,
    /// <see cref="NodeSpool.Roll"/>), whose node file holds all of its spool (<see cref="NodeSpool.ExportedTo"/>: what
    /// the last export read, not file times, which an export still reading while a restarted sampler appends would
    /// pass), and that no job's <c>node-windows</c> names (<see cref="NodeReadWindows.DaysNamedIn"/>: a job alone at raw
    /// storage copies its node reads from there at its finalization). Under the day's <see cref="FinalizationLock"/>,
    /// which an export holds (<see cref="NodeSpool.Export"/>), and its directory's lock, renamed first, then deleted: a
    /// second pruner, an export or a sampler never sees half a day. Unexported days are kept whatever their age (the
    /// node sampler retries their export), said once in the log past <c>state_max_age_h</c>.
    /// </summary>
    private static int PruneNodeDays(AlumetConfig cfg, TimeSpan maxAge, DateTime nowUtc)
    {
        string root = NodeSpool.Root(cfg);
        List<FileSystemInfo> entries;
        try { entries = new DirectoryInfo(root).EnumerateFileSystemInfos().ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; }
        int removed = 0;
        foreach (var entry in entries)
        {
            // Plain directories only: never a symbolic link, whatever it points to.
            if (entry is not DirectoryInfo || entry.LinkTarget is not null) continue;
            string name = entry.Name;
            try
            {
                int removing = name.IndexOf(RemovingInfix, StringComparison.Ordinal);
                if (removing > 0)
                {
                    // A pruner killed between the rename and the delete; a live one is still deleting it.
                    if (int.TryParse(name.AsSpan(removing + RemovingInfix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)
                        && !Directory.Exists(Path.Combine(cfg.Paths.ProcfsRoot, pid.ToString(CultureInfo.InvariantCulture))))
                        Directory.Delete(entry.FullName, recursive: true);
                    continue;
                }
                if (!NodeSpool.IsDay(name, out var day) || day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc).AddDays(1) + NodeSpool.PruneAfter > nowUtc)
                    continue;
                using var claim = FinalizationLock.Acquire(entry.FullName, TimeSpan.Zero, out _);
                if (claim is null) continue; // being exported: the next finalization looks again
                using var idle = FinalizationLock.AcquireDirectory(entry.FullName, TimeSpan.Zero, out _);
                if (idle is null) continue; // a sampler has it open
                if (NodeSpool.ExportedTo(entry.FullName) is null)
                {
                    if (nowUtc - LastWrite(entry.FullName) > maxAge)
                        SayKeptOnce(entry.FullName, $"node spool {entry.FullName} is kept: it is older than state_max_age_h and its node file does not hold all of it (the node sampler retries its export every hour; alumet-hpc finalize-job --node-day {entry.FullName} exports it now)");
                    continue;
                }
                // Read under the day's locks: a window opens only in the day a sampler has open.
                if (ReferencedDays(cfg.Paths.StateDir).Contains(name)) continue;
                string gone = entry.FullName + RemovingInfix + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
                Directory.Move(entry.FullName, gone); // rename(2): an export or a sampler that takes the locks next finds no day
                idle.Dispose();
                claim.Dispose();
                Directory.Delete(gone, recursive: true);
                removed++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.Warn($"node spool {entry.FullName} was not removed: {e.Message}");
            }
        }
        return removed;
    }

    /// <summary>Says once why <paramref name="dir"/>, older than <c>state_max_age_h</c>, is kept (<see cref="KeptLoggedFile"/> in it).</summary>
    private static void SayKeptOnce(string dir, string why)
    {
        string mark = Path.Combine(dir, KeptLoggedFile);
        if (File.Exists(mark)) return;
        Log.Warn(why);
        File.WriteAllText(mark, "");
    }

    /// <summary>When the day's spool was last written: spool.bin's or meta.json's time, not the directory's (the lock
    /// file and the logged marker change it).</summary>
    private static DateTime LastWrite(string dayDir)
    {
        var lastWrite = DateTime.MinValue;
        foreach (string file in new[] { SpoolWriter.RecordsFile, SpoolWriter.MetaFile })
        {
            var f = new FileInfo(Path.Combine(dayDir, file));
            if (f.Exists && f.LastWriteTimeUtc > lastWrite) lastWrite = f.LastWriteTimeUtc;
        }
        return lastWrite == DateTime.MinValue ? Directory.GetLastWriteTimeUtc(dayDir) : lastWrite;
    }

    /// <summary>The days named in any job state dir's <c>node-windows</c>; a file that cannot be read throws (the day is kept).</summary>
    private static HashSet<string> ReferencedDays(string stateRoot)
    {
        var days = new HashSet<string>(StringComparer.Ordinal);
        foreach (string scheduler in Schedulers.SchedulerNames.All)
        {
            List<DirectoryInfo> jobs;
            try { jobs = new DirectoryInfo(Path.Combine(stateRoot, scheduler)).EnumerateDirectories().ToList(); }
            catch (DirectoryNotFoundException) { continue; }
            foreach (var job in jobs)
                if (job.LinkTarget is null) days.UnionWith(NodeReadWindows.DaysNamedIn(job.FullName));
        }
        return days;
    }
}
