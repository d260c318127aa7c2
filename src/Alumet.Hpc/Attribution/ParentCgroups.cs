using Alumet.Hpc.Core;

namespace Alumet.Hpc.Attribution;

/// <summary>
/// The CPU time of a job cgroup removed before its job's end (Slurm removes it when the job's last step ends, before the
/// epilog's end reads it), from the scheduler's cgroup above it (<see cref="IJobCgroupLocator.Parents"/>): the kernel
/// keeps a removed child's CPU time in every ancestor (v1 cpuacct charges them all as it charges a task; v2's
/// <c>usage_usec</c> includes dead descendants). Every snapshot reads, after the jobs' cgroups, each parent of a job read
/// or lost in it, once per distinct parent (one read per parent and period: the users' directories and the scheduler's
/// one, never per job). README "Attribution":
/// <code>
///   lost job's CPU time in the period = parent's delta − Σ deltas of the other registered jobs' cgroups below it
/// </code>
/// taken from the nearest parent that is still there and was read at the previous snapshot too, only where that is exact:
/// the lost cgroup is removed (not a read that failed), no other job below that parent was lost in the period, every
/// other registered job below it was read at both snapshots (a job first seen, or found again, may bring CPU time from
/// before the period), no registered job of the node has an unknown cgroup (never read: it may have come and gone below
/// the parent), and below the parent, down to the jobs' level, there is nothing but the registered jobs' cgroups and the
/// scheduler's directories above them, none holding processes of its own (an unregistered job's or a daemon's CPU time
/// would be taken for the lost job's). Otherwise the job's CPU time of the period is 0, as before, and its rows say so
/// (flags=8). What this cannot see: a cgroup the sampler does not know (a job whose prolog did not register it) made and
/// removed below the parent within the one period.
/// </summary>
public sealed class ParentCgroups : IDisposable
{
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    /// <summary>Parents whose CPU file could not be opened or read, with the snapshot that tried: tried once a snapshot, not once per job below them.</summary>
    private readonly Dictionary<string, long> _unopened = new(StringComparer.Ordinal);
    private long _snapshot;

    /// <summary>
    /// After every job's <see cref="JobCpu.Sample"/> of a snapshot (<paramref name="cpu"/>[j] = job j's CPU ns): reads the
    /// parents, and gives each job that lost its cgroup in the period its CPU time from its parent where that is exact
    /// (<see cref="JobCpu.FromParent"/>).
    /// </summary>
    public void Read(ReadOnlySpan<JobCpu> jobs, Span<ulong> cpu)
    {
        if (!ReadParents(jobs)) return;
        for (int j = 0; j < jobs.Length; j++)
            if (jobs[j].Lost && FromParent(jobs, cpu, j) is { } ns)
            {
                cpu[j] = ns;
                jobs[j].TakeFromParent();
            }
    }

    /// <summary>
    /// A restarted sampler's baseline (NodeSampler.Recover), after its jobs' (<see cref="JobCpu.Rebase"/>): the parents
    /// are read at the instant its first period starts, so that a job cgroup lost in that period gets its CPU time from
    /// them as in any other (read there first, a parent had no delta for the period: flags=8).
    /// </summary>
    public void Rebase(ReadOnlySpan<JobCpu> jobs) => ReadParents(jobs);

    /// <summary>Reads, once each, the parents of every job read or lost now; true when a job was lost.</summary>
    private bool ReadParents(ReadOnlySpan<JobCpu> jobs)
    {
        _snapshot++;
        bool lost = false;
        foreach (var job in jobs)
        {
            if (job.CgroupDirectory is null && !job.Lost) continue;
            lost |= job.Lost;
            for (int p = 0; p < job.Parents.Count; p++) ReadOnce(job.Parents[p]); // no enumerator: nothing allocated per period
        }
        if (_entries.Count > 0)
            foreach (var (dir, e) in _entries)
                if (e.Snapshot != _snapshot)
                {
                    e.Reader.Dispose();
                    _entries.Remove(dir);
                }
        if (_unopened.Count > 0)
            foreach (var (dir, tried) in _unopened)
                if (tried != _snapshot) _unopened.Remove(dir);
        return lost;
    }

    private void ReadOnce(JobCgroup parent)
    {
        string dir = parent.Directory;
        if (_entries.TryGetValue(dir, out var e))
        {
            if (e.Snapshot == _snapshot || Take(e, dir)) return;
            // Removed (Slurm removes a user's directory with their last job): dropped now, and opened anew here, where a
            // new one may be (made again for the user's next job, or a requeue's). Until 2026-12-03 it was only marked, and
            // the next job below it in the same snapshot read it again through the same file: where a removed cgroup's file
            // still reads its last value, it was never opened anew, and never had a delta again.
            e.Reader.Dispose();
            _entries.Remove(dir);
        }
        if (_unopened.TryGetValue(dir, out long tried) && tried == _snapshot) return;
        if (CgroupCpuReader.TryOpen(parent) is { } reader)
        {
            e = new Entry(reader, Native.Libc.StatPath(dir)?.Ino);
            if (Take(e, dir))
            {
                _entries[dir] = e;
                return;
            }
            reader.Dispose();
        }
        _unopened[dir] = _snapshot; // tried once a snapshot
    }

    /// <summary>
    /// Reads <paramref name="e"/> at this snapshot; false where it is removed. As a job's cgroup (JobCpu.Sample): a removed
    /// cgroup's open file fails, or still reads its last value; a stat that fails otherwise than ENOENT or ENOTDIR is not a
    /// removal (until 2026-12-03 it was: the parent had no delta the period after, nor a lost job below it its CPU time).
    /// </summary>
    private bool Take(Entry e, string dir)
    {
        e.Snapshot = _snapshot;
        if (!e.Reader.TryReadNs(out ulong ns) || (e.HasLast && ns == e.LastNs && CgroupHierarchy.PresenceOf(dir, e.Inode) == Presence.Gone))
            return false;
        e.Both = e.HasLast;
        e.Delta = ns - Math.Min(ns, e.LastNs);
        (e.LastNs, e.HasLast) = (ns, true);
        return true;
    }

    /// <summary>Job <paramref name="lost"/>'s CPU ns in the period from its nearest parent still there, or null where not exact.</summary>
    private ulong? FromParent(ReadOnlySpan<JobCpu> jobs, ReadOnlySpan<ulong> cpu, int lost)
    {
        var job = jobs[lost];
        if (!job.LostCgroupRemoved()) return null;
        foreach (var parent in job.Parents)
        {
            // Removed too, or not read at the previous snapshot: the next one up holds it as well.
            if (!_entries.TryGetValue(parent.Directory, out var e) || e.Snapshot != _snapshot || !e.Both
                || CgroupHierarchy.PresenceOf(parent.Directory, e.Inode) != Presence.There) continue;
            ulong others = 0;
            var below = new HashSet<string>(StringComparer.Ordinal);
            var scheduler = new HashSet<string>(StringComparer.Ordinal);
            for (int k = 0; k < jobs.Length; k++)
            {
                var other = jobs[k];
                if (other.Unseen) return null;
                foreach (var p in other.Parents) scheduler.Add(p.Directory);
                if (k == lost || !IsBelow(other, parent.Directory)) continue;
                if (other.Lost) return null;                              // two lost below it in one period
                if (other.Steady) { others += cpu[k]; below.Add(other.CgroupDirectory!); }
                else if (other.CgroupDirectory is not null) return null;  // first seen, or found again, in the period
                // else gone before the period: nothing of it in the parent's delta
            }
            string rel = Path.GetRelativePath(parent.Directory, job.LostDirectory!);
            int depth = rel.Split(Path.DirectorySeparatorChar).Length;
            if (!OnlyJobsBelow(parent.Directory, depth, below, scheduler)) return null;
            // The jobs' cgroups are read before their parents (as steps before their job): a few µs of the others' CPU
            // time may reach the parent one period before them; never below 0.
            return e.Delta - Math.Min(e.Delta, others);
        }
        return null;
    }

    private static bool IsBelow(JobCpu job, string parent)
    {
        foreach (var p in job.Parents)
            if (p.Directory == parent) return true;
        return false;
    }

    /// <summary>
    /// <paramref name="dir"/> holds no process of its own, and its subdirectories <paramref name="depth"/> levels down are
    /// the registered jobs' cgroups read at both snapshots (<paramref name="jobs"/>), those above the scheduler's directories
    /// of registered jobs (<paramref name="scheduler"/>) holding the same. Listed only in a period that lost a job. False
    /// where a directory could not be listed (not proven; until 2026-12-03 such a listing counted as "nothing below").
    /// </summary>
    private static bool OnlyJobsBelow(string dir, int depth, HashSet<string> jobs, HashSet<string> scheduler)
    {
        if (TextFile.ReadTrimmed(Path.Combine(dir, "cgroup.procs")) is not { Length: 0 }) return false;
        if (CgroupHierarchy.Subdirectories(dir) is not { } subs) return false;
        foreach (string sub in subs)
            if (depth <= 1 ? !jobs.Contains(sub) : !scheduler.Contains(sub) || !OnlyJobsBelow(sub, depth - 1, jobs, scheduler))
                return false;
        return true;
    }

    public void Dispose()
    {
        foreach (var e in _entries.Values) e.Reader.Dispose();
        _entries.Clear();
    }

    /// <summary>A parent cgroup being read: its kept-open reader, the inode it was opened at, its last usage and delta.</summary>
    private sealed class Entry(CgroupCpuReader reader, ulong? inode)
    {
        public CgroupCpuReader Reader { get; } = reader;
        public ulong? Inode { get; } = inode;
        public long Snapshot;
        public ulong LastNs, Delta;
        public bool HasLast; // LastNs is a read of this cgroup
        public bool Both;    // read at this snapshot and the one before: Delta is the period's
    }
}
