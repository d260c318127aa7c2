using Alumet.Hpc.Core;
using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Outputs.Carbon;
using Alumet.Hpc.Outputs.Uncertainty;

namespace Alumet.Hpc.Report;

public enum ReportRowKind
{
    /// <summary>The job over all its nodes (the only line of a single-node job).</summary>
    Job,
    /// <summary>One node of a multi-node job.</summary>
    Node,
    /// <summary>One step (<c>1234.batch</c>, <c>1234.0</c>) over the nodes it ran on: part of the job line, never added to it.</summary>
    Step,
}

/// <summary>One printed line. Energies in J, powers in W; a null power means "not defined for this line".</summary>
public sealed record ReportRow(
    ReportRowKind Kind, string JobId, string Cluster, string Scheduler, string User, int Uid, IReadOnlyList<string> Nodes,
    DateTime? Start, DateTime? End, double ElapsedS, DomainEnergies Energy, double AvePowerW, double? MaxPowerW,
    string Frequency, string Interfaces, bool Estimated, string EstimateModel, string Status, string Reason,
    long Samples, long WrapAmbiguous, long ReadErrors, string Perimeter, IReadOnlyList<string> ParquetPaths)
{
    public bool Measured => Status != JobStatus.NotMeasured;
    /// <summary>The nodes in sacct's ranged form (<c>n[1-2]</c>).</summary>
    public string NodeList => HostList.Compress(Nodes);

    /// <summary>The run(s) of the job this line covers (<see cref="JobRecord.RunId"/>).</summary>
    public string RunId { get; init; } = "";

    /// <summary>Periods whose share missed the job's CPU time after its cgroup was removed (<see cref="JobRecord.CgroupGonePeriods"/>).</summary>
    public long CgroupGonePeriods { get; init; }

    /// <summary>The energies are lower bounds: a counter wrap may have been missed, or a period's share missed CPU time.</summary>
    public bool LowerBound => WrapAmbiguous > 0 || CgroupGonePeriods > 0;

    /// <summary>The job's name, safe to print (<see cref="ReportFields.Untrusted"/>); a step line: the step's name
    /// (batch, extern) as sacct shows it, "" for a numbered step.</summary>
    public string JobName { get; init; } = "";

    /// <summary>Uncertainty of TotalEnergy (docs/uncertainty.md); unknown for rows written before it existed.</summary>
    public EnergyUncertainty Uncertainty { get; init; } = EnergyUncertainty.None;
    /// <summary>Facility energy and CO2e (docs/carbon.md); null figures were not configured or not computable.</summary>
    public FacilityCarbon Carbon { get; init; } = FacilityCarbon.None;

    /// <summary>
    /// Whether a domain was measured, so that an absent one prints blank rather than 0 (sacct). The row records
    /// interfaces, not each counter: GPUs are measured when an NVML interface is; the package when RAPL (powercap) or
    /// the estimate is; a RAPL sub-domain (cores, uncore, DRAM, psys) when it holds energy, since a present counter
    /// always advances over a job.
    /// </summary>
    public bool Has(ResourceKind kind) => Measured && kind switch
    {
        ResourceKind.Gpu => Interfaces.Contains("nvml", StringComparison.Ordinal),
        ResourceKind.CpuPackage => Interfaces.Contains("powercap", StringComparison.Ordinal) || Interfaces.Contains("estimate", StringComparison.Ordinal)
            || Energy.PackageJ != 0,
        _ => Energy[kind] != 0,
    };

    /// <summary>Wall-side energy from the nodes' calibration models (a MODEL), J; null when no node of the line has one.</summary>
    public double? WallModelEnergyJ { get; init; }

    /// <summary>Its standard uncertainty (k = 1), J: nodes' models are independent, so uncertainties add in quadrature.</summary>
    public double WallModelUncertaintyJ { get; init; }

    /// <summary>Whether the BMC measured the node(s) at the wall (interface ipmi-dcmi or ipmi-sensor).</summary>
    public bool WallMeasured => Interfaces.Contains("ipmi-", StringComparison.Ordinal);

    /// <summary>What the Interface column shows: an estimate is always marked with its model.</summary>
    public string InterfaceLabel
    {
        get
        {
            if (!Estimated) return Interfaces;
            string marker = $"estimate({(EstimateModel.Length > 0 ? EstimateModel : "model")})";
            var others = Interfaces.Split(',', StringSplitOptions.RemoveEmptyEntries).Where(i => i != "estimate");
            return string.Join(',', others.Prepend(marker));
        }
    }
}

/// <summary>A job as reported: its lines in print order and the notes that qualify them.</summary>
public sealed record ReportJob(string Cluster, string Scheduler, string JobId, ReportRow Total, IReadOnlyList<ReportRow> NodeRows,
    IReadOnlyList<ReportRow> StepRows, IReadOnlyList<string> Notes)
{
    /// <summary>
    /// Print order, following sacct: the job line first, then (multi-node jobs only) one line per node with the
    /// same JobID and the node's name, then the step lines. A single-node job has no separate node line
    /// because it would repeat the job line.
    /// </summary>
    public IEnumerable<ReportRow> Lines(string? onlyStep = null)
    {
        if (onlyStep is not null)
        {
            foreach (var s in StepRows) if (s.JobId == onlyStep) yield return s;
            yield break;
        }
        yield return Total;
        if (NodeRows.Count > 1) foreach (var n in NodeRows) yield return n;
        foreach (var s in StepRows) yield return s;
    }
}

/// <summary>Turns accounting rows (one per job and node) into report lines and notes. Pure: no I/O.</summary>
public static class ReportBuilder
{
    public static IReadOnlyList<ReportJob> Build(IEnumerable<JobRecord> records) => Stream(records, false).ToList();

    /// <summary>
    /// Jobs from rows in which each job's rows are adjacent (<see cref="AccountingDb.Stream"/>'s order): one job in memory
    /// at a time. <paramref name="eachRun"/> makes every run of a reused job id its own job.
    /// </summary>
    public static IEnumerable<ReportJob> Stream(IEnumerable<JobRecord> records, bool eachRun)
    {
        var group = new List<JobRecord>();
        DateTime? groupEnd = null; // the latest end of the group's rows
        foreach (var r in records)
        {
            if (group.Count > 0 && !(group[0].Cluster == r.Cluster && group[0].Scheduler == r.Scheduler && group[0].JobId == r.JobId
                && (!eachRun || SameRun(group, groupEnd, r))))
            {
                yield return BuildJob(group);
                group = [];
                groupEnd = null;
            }
            group.Add(r);
            if (r.End is { } end && (groupEnd is null || end > groupEnd)) groupEnd = end;
        }
        if (group.Count > 0) yield return BuildJob(group);
    }

    /// <summary>
    /// <paramref name="r"/> (rows come by start time) is of the run of <paramref name="group"/>: the same run id (a SLUID
    /// names the run on every node), or it started before the group's rows ended. Without a SLUID each node names the
    /// run by its own start, a few ms apart (README, "Run id"), and two runs of one job id never overlap; comparing run
    /// ids alone split one multi-node run into a job per node under --runs. The rule of AccountingDb's LatestRunSql.
    /// A row with no time at all (not_measured) is of its run id's run only (AccountingDb.Timeless): it used to join
    /// whichever run came next, and a group of such rows took any run after it.
    /// </summary>
    private static bool SameRun(List<JobRecord> group, DateTime? groupEnd, JobRecord r) =>
        group.Exists(g => g.RunId == r.RunId)
        || (!Timeless(r) && group.Exists(g => !Timeless(g)) && (r.Start is null || groupEnd is null || r.Start <= groupEnd));

    private static bool Timeless(JobRecord r) => r.Start is null && r.End is null;

    private static ReportJob BuildJob(List<JobRecord> rows)
    {
        var nodes = rows.OrderBy(r => r.Node, StringComparer.Ordinal).ThenBy(r => r.RunId, StringComparer.Ordinal).ToList();
        var first = nodes[0];
        var nodeRows = nodes.Select(NodeRow).ToList();
        var total = nodes.Count == 1 ? nodeRows[0] with { Kind = ReportRowKind.Job } : Combine(ReportRowKind.Job, first.JobId, nodeRows);

        var steps = nodes.SelectMany(n => n.Steps.Select(s => (Node: n, Step: s)))
            .GroupBy(x => x.Step.StepId)
            .OrderBy(g => g.Key, Comparer<string>.Create(StepOrder.Compare))
            .Select(g => Combine(ReportRowKind.Step, g.Key, g.Select(x => StepRow(x.Node, x.Step)).ToList()))
            .ToList();

        var notes = Notes(nodes);
        notes.AddRange(QualityNotes(total, nodes));
        return new ReportJob(first.Cluster, first.Scheduler, first.JobId, total, nodeRows, steps, notes);
    }

    /// <summary>
    /// How to read TotalEnergyU (one line for all jobs with the same k: notes are de-duplicated), missed energy per job,
    /// and how CO2e was obtained. A row recorded before uncertainties existed shows an empty TotalEnergyU and no note.
    /// </summary>
    private static IEnumerable<string> QualityNotes(ReportRow total, List<JobRecord> nodes)
    {
        if (!total.Measured) yield break;
        var u = total.Uncertainty;
        if (u.Known)
        {
            yield return $"UNCERTAINTY: TotalEnergy ± TotalEnergyU, expanded uncertainty at k={Num(u.CoverageFactor)} ({EnergyUncertainty.ConfidenceLabel(u.CoverageFactor)}); " +
                $"--json gives its components; method: {UncertaintyModel.MethodReference}.";
            if (u.MissedJ > 0)
                yield return $"MISSED ENERGY: job {total.JobId}: up to {Quantity(u.MissedJ, "J")} more may have been used (lower-bound or rejected intervals, lost records, a failed last read): the true total lies below TotalEnergy + TotalEnergyU + MissedEnergy.";
        }
        var c = total.Carbon;
        if (c.Basis.Length > 0) yield return $"CARBON: {c.Basis}; method: docs/carbon.md.";
        foreach (var r in nodes.Where(n => n.Carbon.Note.Length > 0))
            yield return $"CARBON: job {r.JobId} on {r.Node}: {r.Carbon.Note}.";
    }

    /// <summary>12345 → "12.35 kJ": a value with its SI-prefixed unit, for notes.</summary>
    internal static string Quantity(double v, string unit)
    {
        string s = ReportFields.SiPrefixed(v);
        char last = s[^1];
        return char.IsLetter(last) ? $"{s[..^1]} {(last == 'K' ? 'k' : last)}{unit}" : $"{s} {unit}";
    }

    private static string Num(double v) => v.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture);

    private static FacilityCarbon CombineCarbon(List<FacilityCarbon> parts)
    {
        if (parts.Count == 0) return FacilityCarbon.None;
        var (f, fu) = FacilityCarbon.Sum(parts.Select(p => (p.FacilityEnergyJ, p.FacilityEnergyUJ)));
        var (c, cu) = FacilityCarbon.Sum(parts.Select(p => (p.Co2eG, p.Co2eUG)));
        return new FacilityCarbon(f, fu, c, cu, JoinDistinct(parts.Select(p => p.Basis), "; "), JoinDistinct(parts.Select(p => p.Note), "; "));
    }

    private static ReportRow NodeRow(JobRecord r) => new(
        ReportRowKind.Node, r.JobId, r.Cluster, r.Scheduler, r.User, r.Uid, [r.Node], r.Start, r.End, r.ElapsedS, r.Energy,
        r.AvePowerW, r.Status == JobStatus.NotMeasured ? null : r.MaxPowerW, r.Frequency, r.Interfaces, r.Estimated, r.EstimateModel,
        r.Status, r.Reason, r.SampleCount, r.WrapAmbiguous, r.ReadErrors, r.Perimeter, r.ParquetPath.Length > 0 ? [r.ParquetPath] : [])
    {
        RunId = r.RunId,
        CgroupGonePeriods = r.CgroupGonePeriods,
        JobName = ReportFields.Untrusted(r.JobName),
        WallModelEnergyJ = r.WallModel.Length > 0 ? r.WallModelEnergyJ : null,
        WallModelUncertaintyJ = r.WallModelUncertaintyJ,
        Uncertainty = r.Uncertainty,
        Carbon = r.Carbon,
    };

    private static ReportRow StepRow(JobRecord n, StepRecord s) => new(
        ReportRowKind.Step, s.StepId, n.Cluster, n.Scheduler, n.User, n.Uid, [n.Node], s.Start, s.End, s.ElapsedS, s.Energy,
        s.AvePowerW, s.MaxPowerW, n.Frequency, n.Interfaces, n.Estimated, n.EstimateModel, n.Status, n.Reason,
        s.SampleCount, s.WrapAmbiguous, 0, n.Perimeter, [])
        { RunId = n.RunId, Uncertainty = s.Uncertainty, JobName = StepName(s.StepId), CgroupGonePeriods = s.CgroupGonePeriods };

    /// <summary>1234.batch → "batch"; 1234.0 → "" (the step's command is not recorded).</summary>
    private static string StepName(string stepId)
    {
        string name = stepId[(stepId.IndexOf('.') + 1)..];
        return name.Length > 0 && !char.IsAsciiDigit(name[0]) ? ReportFields.Untrusted(name) : "";
    }

    /// <summary>
    /// Sums lines of several nodes. MaxPower is left undefined (null) across nodes: the nodes' peaks are not
    /// simultaneous, so neither their sum nor their maximum is the job's peak power.
    /// </summary>
    private static ReportRow Combine(ReportRowKind kind, string jobId, List<ReportRow> parts)
    {
        if (parts.Count == 1) return parts[0] with { Kind = kind, JobId = jobId };
        var measured = parts.Where(p => p.Measured).ToList();
        DateTime? start = measured.Where(p => p.Start is not null).Select(p => p.Start).Min();
        DateTime? end = measured.Where(p => p.End is not null).Select(p => p.End).Max();
        double elapsed = start is { } s && end is { } e ? (e - s).TotalSeconds : parts.Max(p => p.ElapsedS);
        var energy = parts.Aggregate(DomainEnergies.Zero, (acc, p) => acc.Plus(p.Energy));
        string status = parts.All(p => p.Status == JobStatus.Complete) ? JobStatus.Complete
            : parts.All(p => p.Status == JobStatus.NotMeasured) ? JobStatus.NotMeasured
            : JobStatus.Partial;
        string reason = string.Join("; ", parts.Where(p => p.Reason.Length > 0).Select(p => $"{p.NodeList}: {p.Reason}"));
        var first = parts[0];
        return new ReportRow(
            kind, jobId, first.Cluster, first.Scheduler, first.User, first.Uid, parts.SelectMany(p => p.Nodes).Distinct().ToList(),
            start, end, elapsed, energy, elapsed > 0 ? energy.TotalJ / elapsed : 0, null,
            JoinDistinct(parts.Select(p => p.Frequency)), JoinDistinct(parts.Select(p => p.Interfaces)),
            parts.Any(p => p.Estimated), JoinDistinct(parts.Select(p => p.EstimateModel)), status, reason,
            parts.Sum(p => p.Samples), parts.Sum(p => p.WrapAmbiguous), parts.Sum(p => p.ReadErrors),
            JoinDistinct(parts.Select(p => p.Perimeter), "; "), parts.SelectMany(p => p.ParquetPaths).ToList())
        {
            RunId = JoinDistinct(parts.Select(p => p.RunId)),
            CgroupGonePeriods = parts.Sum(p => p.CgroupGonePeriods),
            JobName = parts.Select(p => p.JobName).FirstOrDefault(n => n.Length > 0) ?? "",
            // Only when every measured node has one: a node without a model (uncalibrated, or a job that shared it) would
            // make the sum a silent undercount of the job's wall energy (as FacilityCarbon.Sum refuses for carbon).
            WallModelEnergyJ = measured.Count > 0 && measured.All(p => p.WallModelEnergyJ is not null) ? measured.Sum(p => p.WallModelEnergyJ!.Value) : null,
            WallModelUncertaintyJ = Math.Sqrt(parts.Sum(p => p.WallModelUncertaintyJ * p.WallModelUncertaintyJ)),
            Uncertainty = EnergyUncertainty.Combine(measured.Select(p => p.Uncertainty)),
            Carbon = CombineCarbon(measured.Select(p => p.Carbon).ToList()),
        };
    }

    private static string JoinDistinct(IEnumerable<string> values, string sep = ",") =>
        string.Join(sep, values.SelectMany(v => sep == "," ? v.Split(',', StringSplitOptions.RemoveEmptyEntries) : [v])
            .Where(v => v.Length > 0).Distinct().OrderBy(v => v, StringComparer.Ordinal));

    /// <summary>Everything a reader must know before trusting a number: estimates, lower bounds, gaps.</summary>
    private static List<string> Notes(List<JobRecord> nodes)
    {
        var notes = new List<string>();
        foreach (var r in nodes)
        {
            string where = $"job {r.JobId} on {r.Node}";
            if (r.Status == JobStatus.NotMeasured)
                notes.Add($"NOT MEASURED: {where}: {(r.Reason.Length > 0 ? r.Reason : "no reason recorded")}.");
            else if (r.Status == JobStatus.Partial)
                notes.Add($"PARTIAL: {where}: {(r.Reason.Length > 0 ? r.Reason : "part of the job was not measured")}.");
            if (r.Estimated)
                notes.Add($"ESTIMATED: {where}: energy from the CPU-time power model '{r.EstimateModel}', not a measurement.");
            if (r.WrapAmbiguous > 0)
                notes.Add($"LOWER BOUND: {where}: {r.WrapAmbiguous} sample(s) may have missed an energy-counter wrap; energies are lower bounds.");
            if (r.CgroupGonePeriods > 0)
                notes.Add($"LOWER BOUND: {where}: the job's cgroup was removed before its end, and {r.CgroupGonePeriods} period(s) of its share " +
                          "miss its CPU time since the read before (that energy is in unattributed); energies are lower bounds.");
            foreach (var st in r.Steps.Where(st => st.CgroupGonePeriods > 0))
                notes.Add($"LOWER BOUND: step {st.StepId} on {r.Node}: its cgroup or its job's was removed before its end, and {st.CgroupGonePeriods} period(s) " +
                          "of the step's part miss its CPU time since the read before; its energies are lower bounds.");
            if (r.ReadErrors > 0)
                notes.Add($"READ ERRORS: {where}: {r.ReadErrors} sample(s) miss part of their interval (a counter read failed).");
            if (r.WallModel.Length > 0)
                notes.Add($"MODEL: {where}: WallModelEnergy is the node's calibration model applied to the job, not a measurement " +
                          $"(± is one standard uncertainty from the fit): {r.WallModel}.");
        }
        return notes;
    }
}
