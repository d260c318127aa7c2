namespace Alumet.Hpc.Jobs;

/// <summary>Who and where: the key of a job's files and accounting row.</summary>
/// <param name="Scheduler">"slurm", "oar" or "exec".</param>
/// <param name="RunId">Which run of the job (<see cref="Jobs.RunId"/>); empty until known: the sampler then takes its
/// start time, and an epilog the one recorded in the job's meta.json.</param>
public sealed record JobIdentity(string Scheduler, string Cluster, string JobId, string User, int Uid, string Node, string RunId = "")
{
    /// <summary>The job's name as the scheduler gave it (Slurm's SLURM_JOB_NAME where its hooks get it, OAR's job name,
    /// the command of <c>exec</c>): user-chosen text, carried to the accounting row only; "" when unknown.</summary>
    public string JobName { get; init; } = "";

    /// <summary>Longest job name kept, in characters (Slurm and OAR names are far shorter in practice); longer ones are
    /// cut and end with "...", so that the row says it was cut.</summary>
    public const int MaxJobName = 256;

    /// <summary>A scheduler's job name as recorded: null or blank → "", longer than <see cref="MaxJobName"/> → cut.
    /// Nothing else changes here: the report, not the recorder, makes the text safe to print.</summary>
    public static string RecordedName(string? name) =>
        string.IsNullOrWhiteSpace(name) ? "" : name.Length <= MaxJobName ? name : name[..(MaxJobName - 3)] + "...";

    public string Consumer => Spool.SpoolSeries.JobConsumer(JobId);

    /// <summary>Per-job state directory: &lt;state_dir&gt;/&lt;scheduler&gt;/&lt;job id&gt;.</summary>
    public string StateDirectory(string stateRoot) => Path.Combine(stateRoot, Scheduler, JobId);
}
