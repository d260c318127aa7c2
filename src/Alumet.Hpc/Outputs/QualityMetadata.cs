using System.Globalization;
using Alumet.Hpc.Outputs.Uncertainty;

namespace Alumet.Hpc.Outputs;

/// <summary>
/// Parquet footer keys that qualify the job's totals: TotalEnergy with its uncertainty (docs/uncertainty.md) and the
/// facility energy and CO2e (docs/carbon.md), so a file read without the database still carries them.
/// </summary>
public static class QualityMetadata
{
    public static Dictionary<string, string> For(JobSummary summary)
    {
        var u = summary.Job.Uncertainty;
        var kv = new Dictionary<string, string>
        {
            ["total_energy_j"] = Num(summary.Job.TotalEnergyJ),
            ["total_energy_u_j"] = Num(u.ExpandedJ),
            ["uncertainty_coverage_factor"] = Num(u.CoverageFactor),
            ["uncertainty_confidence"] = EnergyUncertainty.ConfidenceLabel(u.CoverageFactor),
            ["uncertainty_components_j"] =
                $"interfaces={Num(u.InterfacesJ)},attribution={Num(u.AttributionJ)},random={Num(u.RandomJ)} (standard, k=1); missed_max={Num(u.MissedJ)} (one-sided)",
            ["uncertainty_method"] = UncertaintyModel.MethodReference,
        };
        var c = summary.Carbon;
        if (c.FacilityEnergyJ is { } f) { kv["facility_energy_j"] = Num(f); kv["facility_energy_u_j"] = Num(c.FacilityEnergyUJ ?? 0); }
        if (c.Co2eG is { } g) { kv["co2e_g"] = Num(g); kv["co2e_u_g"] = Num(c.Co2eUG ?? 0); }
        if (c.Basis.Length > 0) kv["carbon_basis"] = c.Basis;
        if (c.Note.Length > 0) kv["carbon_note"] = c.Note;
        return kv;
    }

    private static string Num(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
