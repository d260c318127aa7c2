using Alumet.Hpc.Attribution;
using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Schedulers;

/// <summary>Which cgroup layout to search for a job, by scheduler. <c>exec</c> has none: it charges the whole node.</summary>
public static class SchedulerLocators
{
    public static IJobCgroupLocator? Create(string scheduler, AlumetConfig cfg, JobIdentity job, string? sluid) => scheduler switch
    {
        SchedulerNames.Exec => null,
        SchedulerNames.Slurm => Slurm.SlurmCgroupLocator.Create(cfg.Paths.CgroupRoot, job, sluid),
        SchedulerNames.Oar => Oar.OarCgroupLocator.Create(cfg.Paths.CgroupRoot),
        _ => throw new ArgumentException($"unknown scheduler '{scheduler}'; use slurm, oar or exec"),
    };
}
