using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Attribution;

/// <summary>
/// One registered job's CPU time per period: its cgroup (found once through the scheduler's locator, then read
/// through a kept-open handle) and its steps' cgroups. Cost per period: one read per cgroup, nothing per other job.
/// </summary>
public sealed class JobCpu : IDisposable
{
    private readonly JobIdentity _job;
    private readonly IJobCgroupLocator? _locator;
    private CgroupCpuReader? _reader;
    private ulong _lastNs;
    private bool _primed;
    private readonly Dictionary<string, StepEntry> _steps = new(StringComparer.Ordinal);
    private readonly HashSet<string> _stepsSeen = new(StringComparer.Ordinal);
    private readonly List<StepEntry> _listed = new(); // the last listing's readable steps, in its order
    private Native.Libc.DirectoryState? _listedState;   // the job directory just before that listing, when it can stand for it
    private ulong[] _readings = [];

    /// <summary>Listings of the job directory for its steps (the other periods read the steps of the last one).</summary>
    public long ListingCount { get; private set; }

    /// <summary>Monotonic time the job's cgroup was last read, or null if never.</summary>
    public long? LastSeenNs { get; private set; }

    /// <param name="primed">
    /// False for a job registered by its prolog: the cgroup is new, so its whole usage when first seen is this
    /// period's. True for a job recovered by a restarted sampler: the usage so far belongs to periods already gone.
    /// </param>
    public JobCpu(JobIdentity job, IJobCgroupLocator? locator, bool recovered)
    {
        _job = job;
        _locator = locator;
        _primed = recovered;
        _recovered = recovered;
    }

    private readonly bool _recovered;

    /// <summary>CPU ns the job used since the previous call; its steps' parts go to <paramref name="steps"/>.</summary>
    public ulong Sample(long monotonicNs, List<(string Step, ulong Ns)> steps)
    {
        steps.Clear();
        if (_locator is null) return 0;
        if (_reader is null)
        {
            JobCgroup? cg;
            try { cg = _locator.Find(_job); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { cg = null; }
            if (cg is null || CgroupCpuReader.TryOpen(cg) is not { } opened) return 0;
            _reader = opened;
        }
        // A removed cgroup's open file may still read (its last value, on some kernels and on plain files): a usage
        // that did not move is checked against the directory, so a gone job is seen as gone (one stat, idle jobs only).
        if (!_reader.TryReadNs(out ulong ns) || (_primed && ns == _lastNs && !Directory.Exists(_reader.Cgroup.Directory)))
        {
            _reader.Dispose(); // removed (or replaced by a requeue): look it up again next period
            _reader = null;
            _listedState = null; // a new job directory is listed anew, whatever inode it reuses
            return 0;
        }
        LastSeenNs = monotonicNs;
        // First sight: a recovered job's usage so far belongs to periods already gone; a new job's is all this period's.
        ulong delta = _primed ? ns - Math.Min(ns, _lastNs) : ns;
        _lastNs = ns;
        _primed = true;

        if (_locator is IStepCgroupLocator stepLocator)
        {
            var state = Native.Libc.StatDirectory(_reader.Cgroup.Directory);
            if (state is null || state != _listedState || !ReadListedSteps(steps))
                ListSteps(stepLocator, state, steps);
        }
        return delta;
    }

    /// <summary>
    /// The steps of the last listing, read again without listing the job directory: only while its stat is what it was
    /// just before that listing (<see cref="_listedState"/>), which, where the link count is 2 + the subdirectories,
    /// means no step cgroup was created or removed since — except a removal and a creation in the same interval, which
    /// the removed step itself shows: its reads fail (cgroupfs: ENODEV once removed, checked on v1 and v2) or its usage
    /// stops and its directory is gone. False (nothing taken) when a step is gone or unreadable: the caller lists.
    /// </summary>
    private bool ReadListedSteps(List<(string Step, ulong Ns)> steps)
    {
        var listed = _listed;
        if (_readings.Length < listed.Count) _readings = new ulong[listed.Count * 2];
        for (int i = 0; i < listed.Count; i++)
        {
            var e = listed[i];
            if (!e.Reader.TryReadNs(out ulong ns) || (ns == e.LastNs && !Directory.Exists(e.Cgroup.Directory))) return false;
            _readings[i] = ns;
        }
        for (int i = 0; i < listed.Count; i++)
        {
            var e = listed[i];
            steps.Add((e.Cgroup.Step, _readings[i] - Math.Min(_readings[i], e.LastNs)));
            e.LastNs = _readings[i];
        }
        return true;
    }

    /// <summary>
    /// Lists the job's step cgroups (the scheduler's layout) and reads each. The listing is kept for
    /// <see cref="ReadListedSteps"/> only when the job directory's link count, taken before it, is 2 + the steps listed:
    /// the directory holds nothing else and its file system counts subdirectories in it.
    /// </summary>
    private void ListSteps(IStepCgroupLocator locator, Native.Libc.DirectoryState? before, List<(string Step, ulong Ns)> steps)
    {
        steps.Clear();
        _stepsSeen.Clear();
        _listed.Clear();
        var found = locator.EnumerateSteps(_reader!.Cgroup);
        bool complete = true;
        foreach (var step in found)
        {
            _stepsSeen.Add(step.Directory);
            bool known = _steps.TryGetValue(step.Directory, out var entry);
            if (!known)
            {
                if (CgroupCpuReader.TryOpen(new JobCgroup(step.JobId, step.Directory, step.Version)) is not { } r) { complete = false; continue; }
                entry = new StepEntry(step, r);
            }
            if (!entry!.Reader.TryReadNs(out ulong sns))
            {
                if (!known) entry.Reader.Dispose();
                complete = false;
                continue;
            }
            if (!known) _steps[step.Directory] = entry;
            ulong sd = known || !_recovered ? sns - Math.Min(sns, entry.LastNs) : 0;
            entry.LastNs = sns;
            steps.Add((step.Step, sd));
            _listed.Add(entry);
        }
        if (_steps.Count > _stepsSeen.Count) // a step ended: no list is built per period otherwise
            foreach (var gone in _steps.Keys.Where(k => !_stepsSeen.Contains(k)).ToList())
            {
                _steps[gone].Reader.Dispose();
                _steps.Remove(gone);
            }
        _listedState = complete && before is { } b && b.Links == 2 + (ulong)found.Count ? before : null;
        ListingCount++;
    }

    public void Dispose()
    {
        _reader?.Dispose();
        foreach (var e in _steps.Values) e.Reader.Dispose();
    }

    /// <summary>A step cgroup being read: its kept-open reader and its usage at the last read.</summary>
    private sealed class StepEntry(StepCgroup cgroup, CgroupCpuReader reader)
    {
        public StepCgroup Cgroup { get; } = cgroup;
        public CgroupCpuReader Reader { get; } = reader;
        public ulong LastNs;
    }
}
