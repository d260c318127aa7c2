namespace Alumet.Hpc.Attribution;

/// <summary>
/// Splits one interval's node energy between this job, the node's other jobs and "unattributed":
/// <code>
///   denominator = max(node busy CPU time from /proc/stat, job CPU + other jobs' CPU)
///   job         = floor(E × job CPU / denominator)
///   other_jobs  = floor(E × other jobs' CPU / denominator)
///   unattributed = E − job − other_jobs      (idle power, system daemons, rounding)
/// </code>
/// All integers, so job + other_jobs + unattributed = E exactly. The max() guards against cgroup and
/// /proc/stat accounting disagreeing by a few ticks: shares can never exceed the node's energy.
/// </summary>
public static class CpuTimeSplit
{
    public readonly record struct Shares(ulong Job, ulong OtherJobs, ulong Unattributed);

    public static Shares Split(ulong energy, ulong jobCpuNs, ulong otherJobsCpuNs, ulong nodeBusyNs)
    {
        ulong known = jobCpuNs + otherJobsCpuNs;
        ulong denominator = Math.Max(nodeBusyNs, known);
        if (denominator == 0) return new Shares(0, 0, energy);
        ulong job = (ulong)((UInt128)energy * jobCpuNs / denominator);
        ulong others = (ulong)((UInt128)energy * otherJobsCpuNs / denominator);
        return new Shares(job, others, energy - job - others);
    }

    /// <summary>Exclusive allocation: the whole node is the job's.</summary>
    public static Shares Exclusive(ulong energy) => new(energy, 0, 0);
}
