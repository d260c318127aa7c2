using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Attribution;

/// <summary>
/// Scheduler-specific knowledge of where job cgroups live (Slurm, OAR, cgroup v1 or v2).
/// Paths are resolved under the configured sysfs root so tests can use generated trees.
/// </summary>
public interface IJobCgroupLocator
{
    /// <summary>
    /// The job's cgroup (<paramref name="presence"/> <see cref="Presence.There"/>), or null: <see cref="Presence.Gone"/>
    /// while it does not exist (not yet created, or already removed), <see cref="Presence.Unknown"/> when a stat or a listing
    /// on the way failed with an error other than ENOENT or ENOTDIR (<see cref="CgroupHierarchy.IsThere"/>): it may be
    /// there, which <see cref="JobCpu"/> flags (README "Attribution").
    /// </summary>
    JobCgroup? Find(JobIdentity job, out Presence presence);

    /// <summary>
    /// The scheduler's own cgroups above <paramref name="job"/>'s, nearest first, where the kernel still counts the CPU time
    /// of a job cgroup removed before its job's end (v1 cpuacct charges every ancestor as it charges a task; a v2
    /// <c>usage_usec</c> includes dead descendants): README "Attribution". Never a hierarchy's root, whose usage holds the
    /// whole machine's. None by default (an exec job's cgroup: alumet's own parent).
    /// </summary>
    IReadOnlyList<string> Parents(JobCgroup job) => [];
}
