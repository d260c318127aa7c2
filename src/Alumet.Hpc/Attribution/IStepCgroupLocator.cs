namespace Alumet.Hpc.Attribution;

/// <summary>A job step's cgroup (Slurm: step_batch, step_extern, step_interactive, step_0, ...): per-step CPU time.</summary>
public sealed record StepCgroup(string JobId, string Step, string Directory, CgroupVersion Version);

/// <summary>Schedulers whose job cgroups have one child cgroup per step (Slurm) implement this for per-step energy.</summary>
public interface IStepCgroupLocator
{
    /// <summary>
    /// The job's step cgroups; empty when the job cgroup is gone; null when its directory could not be listed, or a step
    /// in it could not be checked (not known: <see cref="JobCpu"/> keeps the steps it knows, README "Attribution").
    /// </summary>
    IReadOnlyList<StepCgroup>? EnumerateSteps(JobCgroup job);
}
