namespace Alumet.Hpc.Schedulers;

/// <summary>The schedulers a job can come from: each names a directory under state_dir and data_dir, and the DB's scheduler column.</summary>
public static class SchedulerNames
{
    public const string Slurm = "slurm";
    public const string Oar = "oar";
    /// <summary><c>alumet-hpc exec</c>: one command measured without a scheduler.</summary>
    public const string Exec = "exec";

    public static readonly string[] All = [Slurm, Oar, Exec];
}
