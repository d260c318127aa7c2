using System.Data.Common;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Outputs.Accounting;

/// <summary>
/// The node's durable queue of accounting rows, like slurmd's spool of records for slurmdbd: a job's row is written
/// here (temp file, fsync, rename, fsync of the directory) before any database write, and an entry is deleted only
/// after the database has committed it. Drained by the sampler (at the end of the job, then in the background for
/// <c>[database] retry_s</c>), by every later hook on the node (within <c>hook_wait_s</c>) and by
/// <c>alumet-hpc db flush</c>. Entries are never replaced: each has its own name (time, pid, random), a drainer
/// deletes exactly the file whose content it committed, and the upsert is idempotent with status precedence, so
/// two drainers of one entry, or two entries of one row, store the same result.
/// </summary>
public sealed class Outbox(string directory)
{
    public const string DirectoryName = "outbox";
    private const string Suffix = ".row.json", LockName = ".drain.lock", ProblemName = ".last-problem";

    /// <summary>Names of the unreadable entries already logged (one per line), so that each is said once, not at every
    /// drain of every hook on the node; written under the drain lock.</summary>
    private const string ReportedName = ".unreadable-logged";

    public string Directory { get; } = directory;

    public static Outbox Of(AlumetConfig cfg) => new(Path.Combine(cfg.Paths.StateDir, DirectoryName));

    /// <summary>Writes <paramref name="record"/> durably (<see cref="AtomicFile.WriteDurably"/>); returns the entry's path.</summary>
    public string Put(JobRecord record)
    {
        System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        string entry = Path.Combine(Directory, $"{DateTime.UtcNow:yyyyMMdd'T'HHmmssfffffff}-{Environment.ProcessId}-{Random.Shared.Next():x8}{Suffix}");
        AtomicFile.WriteDurably(entry, JsonSerializer.SerializeToUtf8Bytes(record, OutboxJsonContext.Default.JobRecord),
            UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return entry;
    }

    /// <summary>Entries, oldest first (a drainer replays them in the order they were written).</summary>
    public IReadOnlyList<string> Pending()
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        var files = System.IO.Directory.GetFiles(Directory, "*" + Suffix);
        Array.Sort(files, StringComparer.Ordinal);
        return files;
    }

    public static JobRecord Read(string entry) =>
        JsonSerializer.Deserialize(File.ReadAllBytes(entry), OutboxJsonContext.Default.JobRecord)
        ?? throw new InvalidDataException($"{entry}: empty outbox entry");

    private void Remove(string entry)
    {
        File.Delete(entry);
        AtomicFile.SyncDirectory(Directory);
    }

    /// <summary>What one drain did.</summary>
    /// <param name="Stored">Entries committed (or already superseded by a better row) and removed.</param>
    /// <param name="Left">Entries still queued.</param>
    /// <param name="Problem">Why entries are left, in words ("database busy ..."); null when none is.</param>
    /// <param name="Unreadable">Of <paramref name="Left"/>, the entries that cannot be read: an administrator's, never
    /// stored by retrying.</param>
    public sealed record DrainResult(int Stored, int Left, string? Problem, IReadOnlyList<JobRecord> StoredRows, int Unreadable = 0)
    {
        /// <summary>Entries that a later drain may still store.</summary>
        public int Retryable => Left - Unreadable;
    }

    /// <summary>
    /// Writes every queued entry to the database, oldest first, within about <paramref name="wait"/> (the back end's
    /// busy timeout included). Another process draining right now (the lock is taken) counts as "being drained": this
    /// call then waits for it only up to <paramref name="wait"/>. Never throws for a database problem: it is the result.
    /// </summary>
    public DrainResult Drain(AccountingBackend backend, TimeSpan wait)
    {
        var sw = Stopwatch.StartNew();
        var stored = new List<JobRecord>();
        if (Pending().Count == 0)
        {
            // Nothing to store: temps are cleaned only when the lock is free now (no hook waits for a cleanup).
            if (Temps().Length > 0)
                using (var free = TryLock(TimeSpan.Zero))
                    if (free is not null) RemoveTempsOfGoneWriters(DateTime.UtcNow);
            return new DrainResult(0, 0, null, stored);
        }
        using var drainLock = TryLock(wait);
        if (drainLock is null)
            return new DrainResult(0, Pending().Count, $"{LastProblem() ?? "queued"}; another process is retrying it now", stored);
        RemoveTempsOfGoneWriters(DateTime.UtcNow);
        int Remaining() => (int)Math.Max(100, (wait - sw.Elapsed).TotalMilliseconds);
        var unreadable = new HashSet<string>(StringComparer.Ordinal);
        var logged = LoggedUnreadable();
        try
        {
            using var db = AccountingDb.Open(backend, Math.Min(1000, Remaining()), Remaining());
            // Rounds until nothing new is left: entries other processes put while this one drains (jobs ending at the
            // same moment) are drained too, never counted as left for a false reason.
            for (var pending = Pending(); ; pending = Pending())
            {
                pending = pending.Where(p => !unreadable.Contains(p)).ToList();
                if (pending.Count == 0) break;
                for (int i = 0; i < pending.Count; i++)
                {
                    if (sw.Elapsed > wait && stored.Count > 0)
                        return new DrainResult(stored.Count, Pending().Count, $"time budget of {wait.TotalSeconds:0.#} s spent", stored, unreadable.Count);
                    JobRecord r;
                    try { r = Read(pending[i]); }
                    catch (Exception e) when (e is JsonException or InvalidDataException or IOException)
                    {
                        if (!File.Exists(pending[i])) continue; // another drainer committed and removed it
                        if (!logged.Contains(Path.GetFileName(pending[i])))
                            Log.Error($"outbox entry {pending[i]} is unreadable ({e.Message}); left in place for an administrator");
                        unreadable.Add(pending[i]);
                        continue;
                    }
                    db.Upsert(r, Remaining());
                    Remove(pending[i]);
                    stored.Add(r);
                }
            }
            int left = Pending().Count;
            // Named here too: each entry's own error line is logged once, not by every later drain (db flush included).
            string? problem = unreadable.Count == 0 ? null
                : $"{unreadable.Count} unreadable entr{(unreadable.Count == 1 ? "y" : "ies")} left for an administrator: {unreadable.Order(StringComparer.Ordinal).First()}{(unreadable.Count > 1 ? ", …" : "")}";
            return new DrainResult(stored.Count, left, problem, stored, unreadable.Count);
        }
        catch (Exception e) when (e is DbException or IOException or UnauthorizedAccessException or InvalidDataException or InvalidOperationException)
        {
            string problem = backend.Describe(e);
            try { File.WriteAllText(Path.Combine(Directory, ProblemName), problem); } catch (IOException) { }
            return new DrainResult(stored.Count, Pending().Count, problem, stored, unreadable.Count);
        }
        finally
        {
            RememberLogged(logged, unreadable);
        }
    }

    /// <summary>A writer's temp older than this whose pid is not running is its leftover: a <see cref="Put"/> creates,
    /// fsyncs and renames its temp in milliseconds (the margin also covers a writer whose pid this process cannot see).</summary>
    internal static readonly TimeSpan TempGrace = TimeSpan.FromMinutes(1);
    /// <summary>A temp older than this is a leftover whatever its pid says: that pid was reused.</summary>
    internal static readonly TimeSpan TempMaxAge = TimeSpan.FromHours(24);

    /// <summary>Temporary files of entries (<see cref="AtomicFile.TempPath"/>: <c>&lt;entry&gt;.row.json.&lt;pid&gt;.&lt;random&gt;.tmp</c>).</summary>
    private string[] Temps() =>
        System.IO.Directory.Exists(Directory) ? System.IO.Directory.GetFiles(Directory, AtomicFile.TempPattern("*" + Suffix)) : [];

    /// <summary>
    /// Removes the temps of writers killed between creating and renaming an entry (kill -9 of a hook or finalizer
    /// mid-write), which nothing else reads or removes. Under the drain lock, so each is removed and logged once. Such
    /// a temp never was a queued row (its <see cref="Put"/> did not return); a finalization it belonged to failed and
    /// is retried from the job's spool (README, "Data: spool, Parquet, database"). Entries (<c>*.row.json</c>) are never touched.
    /// </summary>
    private void RemoveTempsOfGoneWriters(DateTime nowUtc)
    {
        foreach (string tmp in Temps())
        {
            string name = Path.GetFileName(tmp);
            if (!TryWriterPid(name, out int pid)) continue;
            var info = new FileInfo(tmp);
            if (!info.Exists) continue; // renamed into an entry meanwhile
            TimeSpan age = nowUtc - info.LastWriteTimeUtc;
            string? why = age > TempMaxAge ? $"written {age.TotalHours:0} h ago (its pid {pid} was reused)"
                : age > TempGrace && !IsRunning(pid) ? $"its writer, pid {pid}, is gone (killed mid-write {age.TotalMinutes:0} min ago)"
                : null;
            if (why is null) continue;
            try { File.Delete(tmp); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            AtomicFile.SyncDirectory(Directory);
            Log.Warn($"outbox: removed {tmp}, a temporary file never renamed into an entry: {why}");
        }
    }

    /// <summary>The writer's pid in the name of an entry's temp (<see cref="AtomicFile.TryParseTemp"/>); false, and 0, for any other name.</summary>
    internal static bool TryWriterPid(string name, out int pid)
    {
        if (AtomicFile.TryParseTemp(name, out string target, out pid) && target.Length > Suffix.Length && target.EndsWith(Suffix, StringComparison.Ordinal))
            return true;
        pid = 0;
        return false;
    }

    /// <summary>kill(pid, 0): the process exists (EPERM: it exists, not ours).</summary>
    private static bool IsRunning(int pid) =>
        Native.Libc.kill(pid, 0) == 0 || System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == 1 /* EPERM */;

    private HashSet<string> LoggedUnreadable()
    {
        try { return new HashSet<string>(File.ReadAllLines(Path.Combine(Directory, ReportedName)), StringComparer.Ordinal); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return new HashSet<string>(StringComparer.Ordinal); }
    }

    /// <summary>Records the entries logged as unreadable so far; the list keeps only those still in the outbox.</summary>
    private void RememberLogged(HashSet<string> logged, HashSet<string> unreadable)
    {
        string path = Path.Combine(Directory, ReportedName);
        var names = logged.Concat(unreadable.Select(p => Path.GetFileName(p)))
            .Where(n => n.EndsWith(Suffix, StringComparison.Ordinal) && File.Exists(Path.Combine(Directory, n)))
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (names.Count == logged.Count && names.All(logged.Contains)) return;
        try
        {
            if (names.Count == 0) File.Delete(path);
            else File.WriteAllLines(path, names);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Why the last drain left rows (written by the drainer that holds the lock, for those that skip).</summary>
    private string? LastProblem()
    {
        try { return File.ReadAllText(Path.Combine(Directory, ProblemName)).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private FileStream? TryLock(TimeSpan wait)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                // FileShare.None takes flock(LOCK_EX | LOCK_NB) on Unix: one drainer at a time, across processes.
                return new FileStream(Path.Combine(Directory, LockName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (sw.Elapsed < wait)
            {
                Thread.Sleep(50);
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    /// <summary>Time this process has spent draining so far: a hook's database budget is shared by all its drains.</summary>
    public static TimeSpan SpentInProcess => TimeSpan.FromTicks(Interlocked.Read(ref s_spentTicks));
    private static long s_spentTicks;

    /// <summary>
    /// The accounting path of one row: durable in the outbox first, then the database within <paramref name="wait"/>.
    /// </summary>
    /// <returns>The drain's result, and a phrase for logs: "stored in DB", or "queued in OUTBOX (why)".</returns>
    public static (DrainResult Result, string Text) Deliver(JobRecord record, AlumetConfig cfg, TimeSpan wait)
    {
        var outbox = Of(cfg);
        string entry = outbox.Put(record);
        var result = outbox.TimedDrain(cfg, wait);
        // This row's own entry says where it is: other entries left behind (unreadable ones, newer rows) are not its story.
        // Left counts what a retry may still store: an unreadable entry of another job left by the administrator used to
        // make every row "not stored", so each job's sampler retried (and logged the entry) for retry_s.
        bool own = File.Exists(entry);
        result = result with { Left = own ? Math.Max(1, result.Retryable) : result.Retryable, Unreadable = 0 };
        return (result, !own ? $"row stored in {AccountingBackends.For(cfg).Where}"
            : $"row queued in {outbox.Directory} ({result.Problem ?? "queued"}); later hooks and 'alumet-hpc db flush' retry it");
    }

    /// <summary>A drain counted against this process's budget (<see cref="SpentInProcess"/>).</summary>
    public DrainResult TimedDrain(AlumetConfig cfg, TimeSpan wait)
    {
        long t0 = Stopwatch.GetTimestamp();
        try { return Drain(AccountingBackends.For(cfg), wait); }
        finally { Interlocked.Add(ref s_spentTicks, Stopwatch.GetElapsedTime(t0).Ticks); }
    }

    /// <summary>
    /// The sampler's background retry after the job: drains with growing pauses (1 s doubling up to 15 s) until the
    /// outbox is empty or <c>[database] retry_s</c> has passed. Entries still left wait for later hooks and db flush.
    /// </summary>
    public static void RetryInBackground(AlumetConfig cfg, string what)
    {
        var outbox = Of(cfg);
        var sw = Stopwatch.StartNew();
        var total = TimeSpan.FromSeconds(cfg.Database.RetryS);
        var pause = TimeSpan.FromSeconds(1);
        DrainResult? last = null;
        while (sw.Elapsed < total && outbox.Pending().Count > (last?.Unreadable ?? 0))
        {
            Thread.Sleep(pause);
            pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, TimeSpan.FromSeconds(15).Ticks));
            last = outbox.Drain(AccountingBackends.For(cfg), TimeSpan.FromSeconds(Math.Min(30, Math.Max(1, (total - sw.Elapsed).TotalSeconds))));
            if (last.Stored > 0) Log.Info($"{what}: {last.Stored} queued row(s) stored after {sw.Elapsed.TotalSeconds:0.#} s of retries");
        }
        if (outbox.Pending().Count > (last?.Unreadable ?? 0))
            Log.Warn($"{what}: {outbox.Pending().Count} row(s) still queued in {outbox.Directory} after {sw.Elapsed.TotalSeconds:0} s ({last?.Problem ?? "not retried"}); later hooks and 'alumet-hpc db flush' retry them");
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(JobRecord))]
internal sealed partial class OutboxJsonContext : JsonSerializerContext;
