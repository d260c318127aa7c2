using System.Globalization;
using Alumet.Hpc.Config;
using Alumet.Hpc.Outputs.Uncertainty;

namespace Alumet.Hpc.Outputs.Carbon;

/// <summary>
/// PUE and carbon intensity as configured (<c>[facility]</c>, <c>[carbon]</c>), each a constant or a time series, or
/// absent. A file that cannot be used leaves its figure out and says why (<see cref="Problems"/>): a job's
/// finalization never fails because of it.
/// </summary>
public sealed record CarbonInputs(StepSeries? Pue, double PueRel, StepSeries? Intensity, double IntensityRel, IReadOnlyList<string> Problems)
{
    public static readonly CarbonInputs None = new(null, 0, null, 0, []);

    public bool Any => Pue is not null || Intensity is not null || Problems.Count > 0;

    public static CarbonInputs FromConfig(AlumetConfig cfg)
    {
        var problems = new List<string>();
        StepSeries? pue = null, ci = null;
        try
        {
            if (cfg.Facility.PueFile.Length > 0) pue = StepSeries.Load(cfg.Facility.PueFile, "", 1, 5, "PUE");
            else if (cfg.Facility.Pue > 0) pue = StepSeries.Constant(cfg.Facility.Pue);
        }
        catch (TimeSeriesFormatException e) { problems.Add(e.Message); }
        try
        {
            if (cfg.Carbon.IntensityFile.Length > 0)
                ci = StepSeries.Load(cfg.Carbon.IntensityFile, cfg.Carbon.IntensityColumn, 0, 2000, "carbon intensity (gCO2e/kWh)");
            else if (cfg.Carbon.IntensityGPerKwh > 0) ci = StepSeries.Constant(cfg.Carbon.IntensityGPerKwh);
        }
        catch (TimeSeriesFormatException e) { problems.Add(e.Message); }
        return new CarbonInputs(pue, cfg.Facility.PueRel, ci, cfg.Carbon.IntensityRel, problems);
    }
}

/// <summary>
/// A job's facility energy and CO2e, integrated over its own stored intervals (docs/carbon.md).
/// Null figures were not configured or could not be computed; <see cref="Note"/> says which and why.
/// </summary>
/// <param name="FacilityEnergyJ">Σ over intervals of IT energy × PUE(t), J.</param>
/// <param name="FacilityEnergyUJ">Its expanded uncertainty (same k as TotalEnergy), J.</param>
/// <param name="Co2eG">Σ over intervals of IT energy × PUE(t) × intensity(t), gCO2e (PUE = 1 when not configured).</param>
/// <param name="Co2eUG">Its expanded uncertainty, g.</param>
/// <param name="Basis">Which energy feeds these figures and how.</param>
public sealed record FacilityCarbon(double? FacilityEnergyJ, double? FacilityEnergyUJ, double? Co2eG, double? Co2eUG, string Basis, string Note)
{
    public static readonly FacilityCarbon None = new(null, null, null, null, "", "");

    /// <summary>Effective PUE over the job (facility / IT energy).</summary>
    public static double? EffectivePue(double? facilityJ, double itJ) => facilityJ is { } f && itJ > 0 ? f / itJ : null;

    /// <summary>Effective carbon intensity over the job, gCO2e/kWh of facility energy (of IT energy without a PUE).</summary>
    public static double? EffectiveIntensity(double? co2eG, double? facilityJ, double itJ)
    {
        double kwh = (facilityJ ?? itJ) / JoulesPerKwh;
        return co2eG is { } c && kwh > 0 ? c / kwh : null;
    }

    public const double JoulesPerKwh = 3.6e6;

    /// <summary>Sums across nodes: the inputs (PUE, intensity) are shared, so their errors are correlated: uncertainties add linearly.</summary>
    public static (double? Value, double? U) Sum(IEnumerable<(double? Value, double? U)> parts)
    {
        double v = 0, u = 0;
        bool any = false;
        foreach (var (pv, pu) in parts)
        {
            if (pv is not { } x) return (null, null); // a node without the figure: the job's sum would be a silent undercount
            any = true;
            v += x;
            u += pu ?? 0;
        }
        return any ? (v, u) : (null, null);
    }
}

/// <summary>
/// Integrates a job's counted energy over time against PUE(t) and intensity(t). Each stored interval's energy is
/// spread evenly over the interval (constant power within one record: one storage period, 1 s by default) and
/// split at every change of either series. Streaming: constant memory per job.
/// </summary>
internal sealed class CarbonAccumulator(CarbonInputs inputs)
{
    private double _facilityJ, _co2eG;
    private long _outsidePueFrom = long.MaxValue, _outsidePueTo = long.MinValue;
    private long _outsideCiFrom = long.MaxValue, _outsideCiTo = long.MinValue;

    public void Add(long wallNs, long intervalNs, double joules)
    {
        if (joules == 0) return;
        long start = wallNs - Math.Max(0, intervalNs), end = wallNs;
        if (end <= start) { Piece(start, joules); return; }
        long t = start;
        while (t < end)
        {
            long next = end;
            if (inputs.Pue is { IsConstant: false } p) next = Math.Min(next, p.NextChange(t));
            if (inputs.Intensity is { IsConstant: false } c) next = Math.Min(next, c.NextChange(t));
            if (next <= t) next = end; // defensive: never loop without progress
            Piece(t, joules * ((double)(next - t) / (end - start)));
            t = next;
        }
    }

    private void Piece(long t, double joules)
    {
        double pue = 1;
        if (inputs.Pue is { } p)
        {
            pue = p.ValueAt(t);
            if (double.IsNaN(pue))
            {
                _outsidePueFrom = Math.Min(_outsidePueFrom, t);
                _outsidePueTo = Math.Max(_outsidePueTo, t);
                pue = 1;
            }
            _facilityJ += joules * pue;
        }
        if (inputs.Intensity is { } c)
        {
            double ci = c.ValueAt(t);
            if (double.IsNaN(ci))
            {
                _outsideCiFrom = Math.Min(_outsideCiFrom, t);
                _outsideCiTo = Math.Max(_outsideCiTo, t);
                return;
            }
            _co2eG += joules / FacilityCarbon.JoulesPerKwh * pue * ci;
        }
    }

    /// <param name="it">The uncertainty of the job's TotalEnergy, whose relative value carries over to the products.</param>
    public FacilityCarbon Finish(double totalJ, EnergyUncertainty it)
    {
        if (!inputs.Any) return FacilityCarbon.None;
        var notes = new List<string>(inputs.Problems);
        double relE = it.RelativeStandard(totalJ);
        double k = it.Known ? it.CoverageFactor : 0;

        double? facility = null, facilityU = null, co2 = null, co2U = null;
        bool pueOk = inputs.Pue is not null && _outsidePueFrom == long.MaxValue;
        if (inputs.Pue is { } pue)
        {
            if (pueOk)
            {
                facility = _facilityJ;
                facilityU = k * _facilityJ * Math.Sqrt(relE * relE + inputs.PueRel * inputs.PueRel);
            }
            else notes.Add($"facility energy not computed: the PUE series ({pue.Source}) does not cover {Span(_outsidePueFrom, _outsidePueTo)}");
        }
        if (inputs.Intensity is { } ci)
        {
            if (_outsideCiFrom != long.MaxValue)
                notes.Add($"CO2e not computed: the carbon intensity series ({ci.Source}) does not cover {Span(_outsideCiFrom, _outsideCiTo)}");
            else if (inputs.Pue is not null && !pueOk)
                notes.Add("CO2e not computed: it needs the facility energy, which is missing");
            else
            {
                co2 = _co2eG;
                double pr = inputs.Pue is null ? 0 : inputs.PueRel;
                co2U = k * _co2eG * Math.Sqrt(relE * relE + pr * pr + inputs.IntensityRel * inputs.IntensityRel);
                var missing = new List<string>();
                if (inputs.Pue is not null && inputs.PueRel == 0) missing.Add("PUE");
                if (inputs.IntensityRel == 0) missing.Add("carbon intensity");
                if (missing.Count > 0) notes.Add($"the CO2e uncertainty leaves out the {string.Join(" and ", missing)} uncertainty (not given in the configuration)");
            }
        }

        string basis = (inputs.Pue, inputs.Intensity) switch
        {
            ({ } p, { } c) => $"IT energy (TotalEnergy: package+dram+gpu, this job's share) x PUE(t) [{p.Source}] x intensity(t) [{c.Source}], per stored interval",
            ({ } p, null) => $"IT energy (TotalEnergy: package+dram+gpu, this job's share) x PUE(t) [{p.Source}], per stored interval",
            (null, { } c) => $"IT energy (TotalEnergy: package+dram+gpu, this job's share; no PUE configured) x intensity(t) [{c.Source}], per stored interval",
            _ => "",
        };
        return new FacilityCarbon(facility, facilityU, co2, co2U, basis, string.Join("; ", notes));
    }

    private static string Span(long fromNs, long toNs) =>
        $"{Time(fromNs)} to {Time(toNs)} of the job";

    private static string Time(long ns) =>
        DateTime.UnixEpoch.AddTicks(ns / 100).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
