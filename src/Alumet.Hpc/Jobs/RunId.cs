using System.Globalization;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// Which run of a job a row, a spool or a file belongs to: schedulers reuse job ids (Slurm after MaxJobId or a
/// state reset), so (cluster, scheduler, job id, node) alone would let a later run overwrite an earlier one.
/// The run id is Slurm's SLUID when the scheduler gives one (SLURM_JOB_SLUID, Slurm ≥ 25.11), else the run's start
/// time in UTC, <c>yyyyMMddTHHmmssfffZ</c> (sorts like the time it names).
/// </summary>
public static class RunId
{
    public const string StartTimeFormat = "yyyyMMdd'T'HHmmssfff'Z'";

    /// <summary>The run id of a run started at <paramref name="startUtc"/>.</summary>
    public static string FromStart(DateTime startUtc) =>
        DateTime.SpecifyKind(startUtc, DateTimeKind.Utc).ToString(StartTimeFormat, CultureInfo.InvariantCulture);

    /// <summary>From Unix nanoseconds (<see cref="Spool.SpoolMeta.StartWallNs"/>).</summary>
    public static string FromStartNs(long unixNs) => FromStart(DateTime.UnixEpoch.AddTicks(unixNs / 100));

    /// <summary>The SLUID when there is one, else the start time.</summary>
    public static string Of(string? sluid, DateTime startUtc) => string.IsNullOrEmpty(sluid) ? FromStart(startUtc) : sluid;

    /// <summary>1-64 ASCII letters and digits (both forms above): safe in file names and rows.</summary>
    public static bool IsValid(string? s) => Schedulers.SchedulerInput.IsToken(s);
}
