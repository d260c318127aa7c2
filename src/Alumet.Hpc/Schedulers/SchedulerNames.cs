using Alumet.Hpc.Attribution;
using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Schedulers;

/// <summary>
/// The schedulers a job can come from, in one table: each row's name is a directory under state_dir and data_dir and
/// the accounting DB's scheduler column, and its locator says where its jobs' cgroups are. Slurm and OAR differ only in
/// their hooks' parsing (Slurm/SlurmHook.cs, Oar/OarHook.cs) and this cgroup layout; everything after registration
/// (Jobs/) is the same for all. <c>exec</c> creates its command's own cgroup and names it in its registration
/// (Attribution/ExecCgroup.cs), so it has no locator here.
/// </summary>
public static class SchedulerNames
{
    public const string Slurm = "slurm";
    public const string Oar = "oar";
    /// <summary><c>alumet-hpc exec</c>: one command measured without a scheduler.</summary>
    public const string Exec = "exec";

    /// <summary>A scheduler: its name, and the locator of one job's cgroups (null: none, the whole node is the job's).</summary>
    public sealed record Scheduler(string Name, Func<AlumetConfig, JobIdentity, string?, IJobCgroupLocator?> Locator);

    public static readonly IReadOnlyList<Scheduler> Table =
    [
        new(Slurm, (cfg, job, sluid) => Schedulers.Slurm.SlurmCgroupLocator.Create(cfg.Paths.CgroupRoot, job, sluid)),
        new(Oar, (cfg, _, _) => Schedulers.Oar.OarCgroupLocator.Create(cfg.Paths.CgroupRoot)),
        new(Exec, (_, _, _) => null),
    ];

    public static readonly string[] All = Table.Select(s => s.Name).ToArray();

    public static bool IsKnown(string? name) => Array.IndexOf(All, name) >= 0;

    /// <summary>Where <paramref name="job"/>'s cgroups are (<paramref name="sluid"/>: Slurm's SLUID, or null).</summary>
    public static IJobCgroupLocator? Locator(AlumetConfig cfg, JobIdentity job, string? sluid) =>
        (Table.FirstOrDefault(s => s.Name == job.Scheduler) ?? throw new ArgumentException($"unknown scheduler '{job.Scheduler}'; use {string.Join(", ", All)}"))
            .Locator(cfg, job, sluid);
}
