using System.Globalization;
using Alumet.Hpc.Outputs;

namespace Alumet.Hpc.Calibration;

/// <summary>A job's wall-side energy on one node from the node's calibration model: a MODEL, not a measurement.</summary>
/// <param name="Fraction">The job's share of the node's idle power B: its attributed fraction of the node's measured
/// energy over the job (1 when the job held the node exclusively).</param>
/// <param name="UncertaintyJ">Standard uncertainty (k = 1) from the fit (see <see cref="WallModel.JobWallEnergy"/>).</param>
public sealed record WallSideEnergy(double EnergyJ, double UncertaintyJ, double Fraction, WallModel Model)
{
    /// <summary>
    /// The wall-side energy of the job in <paramref name="summary"/> when the node has a trusted model; null with
    /// <paramref name="problem"/> otherwise (no model is normal on an uncalibrated node: the fields stay empty).
    /// </summary>
    public static WallSideEnergy? ForJob(JobSummary summary, string attributionMode, string calibrationDir, string node, out string problem)
    {
        var model = WallModel.TryLoad(calibrationDir, node, out problem);
        if (model is null || summary.Job.Samples == 0) return null;
        double jobJ = summary.Job.TotalEnergyJ;
        double fraction;
        if (attributionMode == "exclusive") fraction = 1;
        else if (summary.SharedRecords > 0)
        {
            // f is the job's part of the node's measured energy, and the file of a job that shared the node holds its own
            // share only (README "Who sees what"): f = 0 would drop its part of b, a guess would be an invention.
            problem = $"job {summary.JobId}: no wall-side model energy: it shared node {node} with other jobs, and its part of the node's energy (the share of the idle power b it is charged) is not in its file";
            Core.Log.Info(problem);
            return null;
        }
        else fraction = summary.SplitNodeJ > 0 ? Math.Clamp(summary.SplitJobJ / summary.SplitNodeJ, 0, 1) : 0;
        // The line holds over the measured power the ladder covered; the node's mean power over the job outside it (with the
        // ladder's own steadiness margin, max(5 W, 5 %)) makes the figure an extrapolation, which its row and file say.
        double nodeW = summary.Job.ElapsedS > 0 ? summary.SplitNodeJ / summary.Job.ElapsedS : 0;
        double lo = model.MinMeasuredW - Math.Max(5, 0.05 * model.MinMeasuredW), hi = model.MaxMeasuredW + Math.Max(5, 0.05 * model.MaxMeasuredW);
        if (nodeW < lo || nodeW > hi)
            model = model with
            {
                JobNote = string.Create(CultureInfo.InvariantCulture,
                    $"EXTRAPOLATED for this job: the node drew {nodeW:0.#} W of ({model.Domains}) on average, outside the {model.MinMeasuredW:0.#}-{model.MaxMeasuredW:0.#} W the calibration covered (rerun `alumet-hpc calibrate` with loads that reach it)"),
            };
        var (e, u) = model.JobWallEnergy(jobJ, summary.Job.ElapsedS, fraction);
        return new WallSideEnergy(e, u, fraction, model);
    }

    /// <summary>Parquet footer keys: the model and this job's wall-side energy, labelled as a model.</summary>
    public Dictionary<string, string> Metadata() => new()
    {
        ["wall_model"] = Model.Describe(),
        ["wall_model_json"] = Model.ToJson().ReplaceLineEndings(""),
        ["wall_model_energy_j"] = EnergyJ.ToString("R", CultureInfo.InvariantCulture),
        ["wall_model_uncertainty_j"] = UncertaintyJ.ToString("R", CultureInfo.InvariantCulture),
        ["wall_model_note"] = string.Create(CultureInfo.InvariantCulture,
            $"MODEL, not a measurement: wall J = a x job measured J + b x elapsed x {Fraction:0.####} (the job's share of the node's measured energy); standard uncertainty (k=1) from the fit's parameter covariance and its residual sigma, taken as fully correlated over the job"),
    };
}
