namespace Alumet.Hpc.Tests.Schedulers;

/// <summary>
/// The real-scheduler end-to-end tests (Slurm, OAR) run one at a time, after the unit tests: they share the
/// machine's 2 CPUs and its cgroups, and the busy/idle split needs a quiet node.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SchedulerE2ECollection
{
    public const string Name = "SchedulerE2E";
}
