using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Sources.Estimate;

namespace Alumet.Hpc.Attribution;

/// <summary>
/// Per attribution period: how much CPU time the job, the node's other jobs and the whole node used,
/// and whether the job's cgroup still exists. Not on the 1 kHz path: it enumerates cgroup directories.
/// </summary>
public sealed class JobAttribution : IDisposable
{
    private readonly JobIdentity _job;
    private readonly IJobCgroupLocator? _locator;
    private readonly ProcStat? _procStat;
    private readonly Dictionary<string, (CgroupCpuReader Reader, ulong LastNs)> _cgroups = new();
    private ulong _lastBusyTicks;
    private bool _primed;

    /// <summary>The whole node is charged to the job (exclusive allocations, or <c>exec</c>).</summary>
    public bool Exclusive { get; }
    /// <summary>GPU resource ids (bus ids) allocated to this job: charged to it entirely.</summary>
    public IReadOnlySet<string> JobGpus { get; }

    /// <summary>Monotonic time the job's cgroup was last seen, or null if never.</summary>
    public long? JobLastSeenNs { get; private set; }
    public bool JobEverSeen => JobLastSeenNs is not null;

    public JobAttribution(JobIdentity job, IJobCgroupLocator? locator, string procfsRoot, bool exclusive, IReadOnlySet<string> jobGpus)
    {
        _job = job;
        _locator = exclusive ? null : locator;
        Exclusive = exclusive || locator is null;
        JobGpus = jobGpus;
        if (!Exclusive) _procStat = new ProcStat(procfsRoot);
    }

    /// <param name="Steps">CPU time of each of the job's steps over the period (empty where the scheduler has no step cgroups).</param>
    public readonly record struct CpuDeltas(ulong JobNs, ulong OtherJobsNs, ulong NodeBusyNs, IReadOnlyList<(string Step, ulong Ns)> Steps);

    /// <summary>CPU time used since the previous call. The first call only primes the node counter.</summary>
    public CpuDeltas Sample(long monotonicNs)
    {
        if (Exclusive || _locator is null || _procStat is null) return new CpuDeltas(0, 0, 0, []);

        ulong nodeBusy = 0;
        if (_procStat.TryRead(out ulong busy, out _))
        {
            nodeBusy = _primed ? (busy - _lastBusyTicks) * (ulong)ProcStat.NsPerTick : 0;
            _lastBusyTicks = busy;
        }

        var present = new HashSet<string>();
        ulong jobNs = 0, othersNs = 0;
        IReadOnlyList<JobCgroup> jobs;
        try { jobs = _locator.EnumerateJobs(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { jobs = Array.Empty<JobCgroup>(); }

        JobCgroup? own = jobs.FirstOrDefault(j => j.JobId == _job.JobId) ?? _locator.Find(_job);
        IEnumerable<JobCgroup> all = own is null || jobs.Contains(own) ? jobs : jobs.Append(own);
        foreach (var cg in all)
        {
            if (Delta(cg, present) is not { } delta) continue;
            if (cg.JobId == _job.JobId)
            {
                jobNs += delta;
                JobLastSeenNs = monotonicNs;
            }
            else
            {
                othersNs += delta;
            }
        }

        var steps = new List<(string, ulong)>();
        if (own is not null && _locator is IStepCgroupLocator stepLocator)
            foreach (var step in stepLocator.EnumerateSteps(own))
                if (Delta(new JobCgroup(step.JobId, step.Directory, step.Version), present) is { } ns)
                    steps.Add((step.Step, ns));
        foreach (var gone in _cgroups.Keys.Where(k => !present.Contains(k)).ToList())
        {
            _cgroups[gone].Reader.Dispose();
            _cgroups.Remove(gone);
        }
        _primed = true;
        return new CpuDeltas(jobNs, othersNs, nodeBusy, steps);
    }

    /// <summary>CPU ns a cgroup used since the previous period (its whole usage when first seen: it started within the period).</summary>
    private ulong? Delta(JobCgroup cg, HashSet<string> present)
    {
        if (!present.Add(cg.Directory)) return null;
        if (!_cgroups.TryGetValue(cg.Directory, out var entry))
        {
            var reader = CgroupCpuReader.TryOpen(cg);
            if (reader is null) { present.Remove(cg.Directory); return null; }
            entry = (reader, 0);
        }
        if (!entry.Reader.TryReadNs(out ulong ns)) { present.Remove(cg.Directory); return null; }
        ulong delta = _primed ? ns - Math.Min(ns, entry.LastNs) : 0;
        _cgroups[cg.Directory] = (entry.Reader, ns);
        return delta;
    }

    public void Dispose()
    {
        foreach (var (reader, _) in _cgroups.Values) reader.Dispose();
        _procStat?.Dispose();
    }
}
