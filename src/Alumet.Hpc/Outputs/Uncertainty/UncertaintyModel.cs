using Alumet.Hpc.Config;

namespace Alumet.Hpc.Outputs.Uncertainty;

/// <summary>What is known of one interface's errors (docs/uncertainty.md, "Interfaces").</summary>
/// <param name="SystematicRel">Relative standard uncertainty of a counter's energy, the same sign over the whole job (calibration, model).</param>
/// <param name="QuantumJ">Resolution of one read of the hardware counter, J.</param>
/// <param name="RandomRelPerRecord">Relative standard uncertainty of each stored interval, independent between intervals (partial sampling).</param>
public sealed record InterfaceAccuracy(double SystematicRel, double QuantumJ, double RandomRelPerRecord);

/// <summary>
/// The uncertainty model applied to every job total: per-interface accuracy, the attribution model's error, the
/// coverage factor, and the plausibility bound used for lower-bound intervals. Built from <c>[uncertainty]</c>
/// (defaults and their sources: docs/uncertainty.md).
/// </summary>
public sealed record UncertaintyModel(
    double CoverageFactor,
    double RaplRel,
    double NvmlEnergyCounterRel,
    double NvmlPowerRel,
    double NvmlPowerCoverage,
    double EstimateRel,
    double AttributionRel,
    double MaxPowerW)
{
    /// <summary>RAPL energy status unit: 2^-ESU J with ESU 14-16 on the CPUs we know; 2^-14 J (61 µJ) is the coarsest.</summary>
    public const double RaplQuantumJ = 1.0 / (1 << 14);
    /// <summary>NVML's energy counter counts mJ; the integrated-power counter (Sources/Nvml/PowerIntegrator) too.</summary>
    public const double NvmlQuantumJ = 1e-3;
    /// <summary>Where this method is written down (reports, Parquet metadata and the DB point here).</summary>
    public const string MethodReference = "docs/uncertainty.md";

    public static UncertaintyModel Default { get; } = FromConfig(new AlumetConfig());

    public static UncertaintyModel FromConfig(AlumetConfig cfg)
    {
        var u = cfg.Uncertainty;
        return new(u.CoverageFactor, u.RaplRel, u.NvmlEnergyCounterRel, u.NvmlPowerRel, u.NvmlPowerCoverage, u.EstimateRel,
            u.AttributionRel, cfg.Sampler.MaxPowerW);
    }

    /// <summary>
    /// Accuracy of an interface by its wire name. Integrated NVML power sees only a fraction c of the time: the unseen
    /// (1 − c) of each interval may differ from the seen part by up to ±100 % of its power (rectangular), hence a
    /// relative standard uncertainty (1 − c)/√3 per interval. Unknown interfaces get the largest configured systematic
    /// error (never a smaller one by accident).
    /// </summary>
    public InterfaceAccuracy For(string interfaceWire) => interfaceWire switch
    {
        "powercap" or "powercap-mmio" or "perf" or "msr" => new(RaplRel, RaplQuantumJ, 0),
        "nvml-energy-counter" => new(NvmlEnergyCounterRel, NvmlQuantumJ, 0),
        "nvml-integrated-power" => new(NvmlPowerRel, NvmlQuantumJ, (1 - NvmlPowerCoverage) / Math.Sqrt(3)),
        "estimate" => new(EstimateRel, 1e-6, 0),
        _ => new(Math.Max(Math.Max(RaplRel, NvmlEnergyCounterRel), Math.Max(NvmlPowerRel, EstimateRel)), NvmlQuantumJ, 0),
    };
}

/// <summary>
/// Uncertainty of one energy total, in J, split so that totals of several nodes can be combined (docs/uncertainty.md):
/// interface and attribution terms are systematic (added linearly across nodes), the random term independent (added in
/// quadrature), the missed-energy term one-sided (the true value can only be higher).
/// </summary>
/// <param name="InterfacesJ">Standard uncertainty from the interfaces' accuracy (systematic).</param>
/// <param name="AttributionJ">Standard uncertainty from the CPU-time split (systematic).</param>
/// <param name="RandomJ">Standard uncertainty from quantisation and partial sampling (independent per interval).</param>
/// <param name="MissedJ">One-sided: energy possibly missed by lower-bound intervals and time no stored row covers (lost records, reads that failed until the end).</param>
/// <param name="CoverageFactor">k of the expanded uncertainty; 0 = not computed (rows written before this existed).</param>
public sealed record EnergyUncertainty(double InterfacesJ, double AttributionJ, double RandomJ, double MissedJ, double CoverageFactor)
{
    public static readonly EnergyUncertainty None = new(0, 0, 0, 0, 0);

    public bool Known => CoverageFactor > 0;

    /// <summary>Combined standard uncertainty u_c: the three independent components in quadrature.</summary>
    public double StandardJ => Math.Sqrt(InterfacesJ * InterfacesJ + AttributionJ * AttributionJ + RandomJ * RandomJ);

    /// <summary>Expanded uncertainty U = k × u_c.</summary>
    public double ExpandedJ => CoverageFactor * StandardJ;

    /// <summary>The same uncertainty relative to <paramref name="totalJ"/> (for products such as facility energy and CO2e).</summary>
    public double RelativeStandard(double totalJ) => totalJ > 0 ? StandardJ / totalJ : 0;

    /// <summary>Totals of several nodes (or parts): systematic terms add linearly (same interfaces and model on every node), random in quadrature.</summary>
    public static EnergyUncertainty Combine(IEnumerable<EnergyUncertainty> parts)
    {
        double i = 0, a = 0, r2 = 0, m = 0, k = 0;
        bool any = false, allKnown = true;
        foreach (var p in parts)
        {
            any = true;
            if (!p.Known) { allKnown = false; continue; }
            i += p.InterfacesJ;
            a += p.AttributionJ;
            r2 += p.RandomJ * p.RandomJ;
            m += p.MissedJ;
            k = Math.Max(k, p.CoverageFactor);
        }
        return any && allKnown ? new EnergyUncertainty(i, a, Math.Sqrt(r2), m, k) : None;
    }

    /// <summary>"~95 %" for k = 2: the two-sided coverage probability of a normal distribution.</summary>
    public static string ConfidenceLabel(double k) =>
        k <= 0 ? "" : $"~{(100 * Erf(k / Math.Sqrt(2))).ToString(k == 2 ? "0" : "0.#", System.Globalization.CultureInfo.InvariantCulture)} %";

    /// <summary>Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7): enough for a confidence label.</summary>
    private static double Erf(double x)
    {
        double t = 1 / (1 + 0.3275911 * Math.Abs(x));
        double y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
        return x >= 0 ? y : -y;
    }
}
