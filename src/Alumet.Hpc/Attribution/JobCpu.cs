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
    private readonly Dictionary<string, (CgroupCpuReader Reader, ulong LastNs)> _steps = new(StringComparer.Ordinal);
    private readonly HashSet<string> _stepsSeen = new(StringComparer.Ordinal);

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
            return 0;
        }
        LastSeenNs = monotonicNs;
        // First sight: a recovered job's usage so far belongs to periods already gone; a new job's is all this period's.
        ulong delta = _primed ? ns - Math.Min(ns, _lastNs) : ns;
        _lastNs = ns;
        _primed = true;

        if (_locator is IStepCgroupLocator stepLocator)
        {
            _stepsSeen.Clear();
            foreach (var step in stepLocator.EnumerateSteps(_reader.Cgroup))
            {
                _stepsSeen.Add(step.Directory);
                bool known = _steps.TryGetValue(step.Directory, out var entry);
                if (!known)
                {
                    if (CgroupCpuReader.TryOpen(new JobCgroup(step.JobId, step.Directory, step.Version)) is not { } r) continue;
                    entry = (r, 0);
                }
                if (!entry.Reader.TryReadNs(out ulong sns)) continue;
                ulong sd = known || !_recovered ? sns - Math.Min(sns, entry.LastNs) : 0;
                _steps[step.Directory] = (entry.Reader, sns);
                steps.Add((step.Step, sd));
            }
            if (_steps.Count > _stepsSeen.Count) // a step ended: no list is built per period otherwise
                foreach (var gone in _steps.Keys.Where(k => !_stepsSeen.Contains(k)).ToList())
                {
                    _steps[gone].Reader.Dispose();
                    _steps.Remove(gone);
                }
        }
        return delta;
    }

    public void Dispose()
    {
        _reader?.Dispose();
        foreach (var (r, _) in _steps.Values) r.Dispose();
    }
}
