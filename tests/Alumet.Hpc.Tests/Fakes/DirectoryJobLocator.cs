using Alumet.Hpc.Attribution;
using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Tests.Fakes;

/// <summary>Scheduler-neutral locator for tests: every subdirectory <c>job_&lt;id&gt;</c> of one parent is a job.</summary>
public sealed class DirectoryJobLocator(string parent, CgroupVersion version) : IJobCgroupLocator, IStepCgroupLocator
{
    /// <summary>Subdirectories <c>step_&lt;name&gt;</c> of the job cgroup, as Slurm lays them out.</summary>
    public IReadOnlyList<StepCgroup> EnumerateSteps(JobCgroup job) =>
        Directory.Exists(job.Directory)
            ? Directory.GetDirectories(job.Directory, "step_*").Select(d => new StepCgroup(job.JobId, Path.GetFileName(d)["step_".Length..], d, version)).ToList()
            : new List<StepCgroup>();

    public JobCgroup? Find(JobIdentity job, out Presence presence)
    {
        var found = Directory.Exists(parent)
            ? Directory.GetDirectories(parent, "job_*").Select(d => new JobCgroup(Path.GetFileName(d)["job_".Length..], d, version)).FirstOrDefault(j => j.JobId == job.JobId)
            : null;
        presence = found is null ? Presence.Gone : Presence.There;
        return found;
    }
}
