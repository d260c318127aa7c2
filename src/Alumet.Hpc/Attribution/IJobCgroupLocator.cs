using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Attribution;

/// <summary>
/// Scheduler-specific knowledge of where job cgroups live (Slurm, OAR, cgroup v1 or v2).
/// Paths are resolved under the configured sysfs root so tests can use generated trees.
/// </summary>
public interface IJobCgroupLocator
{
    /// <summary>The job's cgroup, or null while it does not exist (not yet created, or already removed).</summary>
    JobCgroup? Find(JobIdentity job);

    /// <summary>Every job cgroup of this scheduler currently on the node (the job itself included).</summary>
    IReadOnlyList<JobCgroup> EnumerateJobs();
}
