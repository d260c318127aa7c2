using System.Globalization;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Carbon;
using Alumet.Hpc.Outputs.Uncertainty;
using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Outputs.Accounting;

/// <summary>Status of a job+node row. A better status is never overwritten by a worse one (see <see cref="AccountingDb.Upsert"/>).</summary>
public static class JobStatus
{
    /// <summary>The sampler ran the whole job and its spool was finalized.</summary>
    public const string Complete = "complete";
    /// <summary>Some energy was measured but part of the job is missing (late start, crash, read errors); <c>reason</c> says what.</summary>
    public const string Partial = "partial";
    /// <summary>Nothing was measured (no counter, sampler failed to start ...); <c>reason</c> says why.</summary>
    public const string NotMeasured = "not_measured";

    public static int Rank(string status) => status switch
    {
        Complete => 3,
        Partial => 2,
        NotMeasured => 1,
        _ => 0,
    };

    public static bool IsValid(string status) => Rank(status) > 0;
}

/// <summary>One step's part of the job share on one node (<c>1234.batch</c>, <c>1234.0</c>). Not added to the job total.</summary>
public sealed record StepRecord(
    string StepId, DateTime? Start, DateTime? End, double ElapsedS, DomainEnergies Energy,
    double AvePowerW, double MaxPowerW, long SampleCount, long WrapAmbiguous)
{
    public double TotalEnergyJ => Energy.TotalJ;

    /// <summary>Uncertainty of <see cref="TotalEnergyJ"/> (docs/uncertainty.md).</summary>
    public EnergyUncertainty Uncertainty { get; init; } = EnergyUncertainty.None;

    /// <summary>Periods in which the job's cgroup was found gone and the step's part missed its CPU time since the read
    /// before (<see cref="ConsumerSummary.CgroupGonePeriods"/>): its energy is then a lower bound.</summary>
    public long CgroupGonePeriods { get; init; }

    public static StepRecord FromSummary(StepSummary s) => new(
        s.StepId, s.Summary.Samples > 0 ? s.Summary.Start : null, s.Summary.Samples > 0 ? s.Summary.End : null,
        s.Summary.ElapsedS, s.Summary.Energy, s.Summary.AvePowerW, s.Summary.MaxPowerW, s.Summary.Samples, s.Summary.WrapAmbiguous)
    {
        Uncertainty = s.Summary.Uncertainty,
        CgroupGonePeriods = s.Summary.CgroupGonePeriods,
    };
}

/// <summary>
/// One accounting row: a job's energy on one node in one run. Key: (Cluster, Scheduler, JobId, Node, RunId).
/// Energies are the job's share in J; <see cref="NodeEnergyJ"/>, <see cref="UnattributedEnergyJ"/>, <see cref="OtherJobsEnergyJ"/>
/// are counted-domain totals (package+dram+gpu) of the whole node over the same spool, for context and audits.
/// </summary>
public sealed record JobRecord(
    string Cluster, string Scheduler, string JobId, string Node, string User, int Uid,
    DateTime? Start, DateTime? End, double ElapsedS,
    DomainEnergies Energy, double AvePowerW, double MaxPowerW,
    double FrequencyHz, string Frequency, string Interfaces, bool Estimated, string EstimateModel, string Perimeter,
    string AttributionMode, int StoragePeriodMs,
    long SampleCount, long WrapAmbiguous, long ReadErrors,
    double NodeEnergyJ, double UnattributedEnergyJ, double OtherJobsEnergyJ,
    string Status, string Reason, string ParquetPath, string ToolVersion,
    IReadOnlyList<StepRecord> Steps)
{
    public double TotalEnergyJ => Energy.TotalJ;

    /// <summary>Uncertainty of <see cref="TotalEnergyJ"/> (docs/uncertainty.md); <see cref="EnergyUncertainty.None"/> when not computed.</summary>
    public EnergyUncertainty Uncertainty { get; init; } = EnergyUncertainty.None;

    /// <summary>Facility energy and CO2e of the job on this node (docs/carbon.md).</summary>
    public FacilityCarbon Carbon { get; init; } = FacilityCarbon.None;

    /// <summary>Which run of the job (<see cref="Jobs.RunId"/>): part of the key, so a reused job id never overwrites an
    /// earlier run. Empty only for rows migrated from a database without start time.</summary>
    public string RunId { get; init; } = "";

    /// <summary>The job's name as the scheduler gave it (sacct's JobName: Slurm, OAR; the command for <c>exec</c>), "" when
    /// the scheduler did not say. Text chosen by the user: the report prints it through <c>ReportFields.Untrusted</c>.</summary>
    public string JobName { get; init; } = "";

    /// <summary>Periods in which the job's cgroup was found gone and its CPU time since the read before could not be
    /// attributed to it (<see cref="ConsumerSummary.CgroupGonePeriods"/>): its energy is then a lower bound.</summary>
    public long CgroupGonePeriods { get; init; }

    /// <summary>The job's share of the BMC's whole-node wall energy (node_wall, measured), J; 0 without a BMC.</summary>
    public double WallEnergyJ => Energy.WallJ;

    /// <summary>Wall-side energy from the node's calibration model (a MODEL, see <see cref="WallModel"/>), J; 0 without a model.</summary>
    public double WallModelEnergyJ { get; init; }

    /// <summary>Standard uncertainty (k = 1) of <see cref="WallModelEnergyJ"/> from the calibration fit, J.</summary>
    public double WallModelUncertaintyJ { get; init; }

    /// <summary>The calibration model used (one line: a, b, node, date, tool version, fit quality), "" when none.</summary>
    public string WallModel { get; init; } = "";

    /// <summary>The row of a finalized spool.</summary>
    public static JobRecord FromSummary(JobSummary summary, SpoolMeta meta, string status, string reason, string parquetPath)
    {
        var job = summary.Job;
        bool any = job.Samples > 0;
        return new JobRecord(
            meta.Cluster, meta.Scheduler, meta.JobId, meta.Node, meta.User, meta.Uid,
            any ? job.Start : null, any ? job.End : null, job.ElapsedS,
            job.Energy, job.AvePowerW, job.MaxPowerW,
            summary.MaxFrequencyHz, summary.FrequencyList, summary.InterfaceList, summary.Estimated, summary.EstimateModel, summary.Perimeter,
            meta.AttributionMode, meta.StoragePeriodMs,
            job.Samples, job.WrapAmbiguous, job.ReadErrors,
            summary.Node.TotalEnergyJ, summary.Unattributed.TotalEnergyJ, summary.OtherJobs.TotalEnergyJ,
            status, reason, parquetPath, meta.ToolVersion,
            summary.Steps.Select(StepRecord.FromSummary).ToList())
        {
            Uncertainty = job.Uncertainty,
            Carbon = summary.Carbon,
            // Spools written before run ids: the sampler's start names the run.
            RunId = meta.RunId.Length > 0 ? meta.RunId : Jobs.RunId.FromStartNs(meta.StartWallNs),
            JobName = meta.JobName,
            CgroupGonePeriods = job.CgroupGonePeriods,
        };
    }

    /// <summary>A row saying that this job ran on this node but nothing was measured, and why.</summary>
    public static JobRecord NotMeasured(JobIdentity id, string reason, DateTime? start = null, DateTime? end = null, string toolVersion = "") => new(
        id.Cluster, id.Scheduler, id.JobId, id.Node, id.User, id.Uid,
        start, end, start is { } s && end is { } e && e > s ? (e - s).TotalSeconds : 0,
        DomainEnergies.Zero, 0, 0, 0, "", "", false, "", "", "", 0, 0, 0, 0, 0, 0, 0,
        JobStatus.NotMeasured, reason, "", toolVersion, [])
    {
        RunId = id.RunId,
        JobName = id.JobName,
    };

    internal static string FormatTime(DateTime? t) =>
        t is { } v ? DateTime.SpecifyKind(v, DateTimeKind.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture) : "";

    /// <summary>
    /// Reads a stored time of any precision (seconds to nanoseconds), with 'T' or ' ', and 'Z', an offset or nothing
    /// (UTC): rows written by other versions or by hand. Digits beyond .NET's 100 ns are dropped; an unreadable value is
    /// null ("unknown"), never an exception that would stop a report.
    /// </summary>
    internal static DateTime? ParseTime(string? s)
    {
        if (string.IsNullOrEmpty(s)) return null;
        if (DateTime.TryParseExact(s, "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture, Utc, out var t)) return t; // our own format
        int dot = s.IndexOf('.');
        if (dot > 0)
        {
            int end = dot + 1;
            while (end < s.Length && char.IsAsciiDigit(s[end])) end++;
            if (end - dot - 1 > 7) s = s[..(dot + 8)] + s[end..];
        }
        return DateTime.TryParse(s, CultureInfo.InvariantCulture, Utc, out t) ? t : null;
    }

    private const DateTimeStyles Utc = DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal;
}
