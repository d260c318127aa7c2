using Alumet.Hpc.Core;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// Keeps <c>state_dir</c> bounded. A finalized job's state dir is removed at once (<see cref="JobFinalizer"/>);
/// what stays — the state of a job whose finalization failed (its spool is the only copy of its data), dirs kept
/// by <c>keep_state = "always"</c>, and the one-line <c>&lt;job&gt;.finalized</c> markers — is removed here once
/// older than <c>state_max_age_h</c>. Run by every finalization, so a node's own job ends clean up after it.
/// </summary>
public static class JobStateCleanup
{
    /// <summary>Removes stale job state under every scheduler directory of <paramref name="stateRoot"/>; returns how many entries went.</summary>
    public static int Prune(string stateRoot, TimeSpan maxAge, DateTime nowUtc, string procfsRoot = "/proc")
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
                    if (name.EndsWith(JobFinalizer.MarkerSuffix, StringComparison.Ordinal)
                        && Schedulers.SchedulerInput.IsJobId(name[..^JobFinalizer.MarkerSuffix.Length]))
                    {
                        if (nowUtc - File.GetLastWriteTimeUtc(path) > maxAge) { File.Delete(path); removed++; }
                    }
                    else if (Schedulers.SchedulerInput.IsJobId(name) && Directory.Exists(path)
                             && nowUtc - NewestWrite(path) > maxAge && TryRemoveIdle(path, procfsRoot))
                    {
                        removed++;
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
}
