using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Alumet.Hpc.Calibration;

/// <summary>One steady window of the load ladder: mean measured power (RAPL package + DRAM + NVML GPUs) and mean BMC wall power.</summary>
public sealed record CalibrationPoint(string Step, double MeasuredW, double WallW);

/// <summary>Calibration failed; the message is one sentence saying what and how to fix.</summary>
public sealed class CalibrationException(string message) : Exception(message);

/// <summary>
/// A node's wall-power model: wall W = A × measured W + B, fitted by ordinary least squares on the calibration ladder
/// (README "Wall-side energy"). Carries what the uncertainty needs: the parameters' variances and covariance
/// (s²/Sxx, s²(1/n + x̄²/Sxx), −x̄ s²/Sxx) and the residual standard deviation s of one window's wall power.
/// </summary>
public sealed record WallModel
{
    public string Node { get; init; } = "";
    /// <summary>When the ladder ran, UTC.</summary>
    public DateTime Date { get; init; }
    public string ToolVersion { get; init; } = "";
    /// <summary>Slope: wall W per measured W (PSU efficiency, fans and the rest that scale with load).</summary>
    public double A { get; init; }
    /// <summary>Intercept, W: wall power at zero measured power (idle board, fans, disks, NICs, PSU standby).</summary>
    public double B { get; init; }
    public double VarA { get; init; }
    public double VarB { get; init; }
    public double CovAB { get; init; }
    /// <summary>Residual standard deviation of one window's wall power around the line, W.</summary>
    public double ResidualSigmaW { get; init; }
    public double R2 { get; init; }
    public int Points { get; init; }
    /// <summary>Measured power range the ladder covered, W: the model is an extrapolation outside it.</summary>
    public double MinMeasuredW { get; init; }
    public double MaxMeasuredW { get; init; }
    /// <summary>What "measured" summed (e.g. "cpu_package+dram+gpu") and how the wall side was read (ipmi-dcmi, ipmi-sensor).</summary>
    public string Domains { get; init; } = "";
    public string BmcInterface { get; init; } = "";
    public double WindowS { get; init; }

    /// <summary>Minimum points, span of measured power (W) and R² for a model worth storing.</summary>
    public const int MinPoints = 3;
    public const double MinSpanW = 5;
    public const double MinR2 = 0.9;

    /// <summary>Ordinary least squares of wall on measured power; throws <see cref="CalibrationException"/> on a fit not worth storing.</summary>
    public static WallModel Fit(IReadOnlyList<CalibrationPoint> points, string node, DateTime date, string domains, string bmcInterface, double windowS)
    {
        int n = points.Count;
        if (n < MinPoints)
            throw new CalibrationException($"too few steady points ({n}, need at least {MinPoints}): lengthen the steps (--step-seconds) or check that the BMC answers (see the log)");
        double mx = points.Average(p => p.MeasuredW), my = points.Average(p => p.WallW);
        double sxx = 0, sxy = 0, syy = 0;
        foreach (var p in points)
        {
            sxx += (p.MeasuredW - mx) * (p.MeasuredW - mx);
            sxy += (p.MeasuredW - mx) * (p.WallW - my);
            syy += (p.WallW - my) * (p.WallW - my);
        }
        double min = points.Min(p => p.MeasuredW), max = points.Max(p => p.MeasuredW);
        if (max - min < MinSpanW)
            throw new CalibrationException($"the load ladder covered only {min:0.#}-{max:0.#} W of measured power: too narrow to fit a slope (need {MinSpanW} W); check that the load steps reach the CPUs/GPUs");
        double a = sxy / sxx, b = my - a * mx;
        double ssRes = 0;
        foreach (var p in points) { double r = p.WallW - (a * p.MeasuredW + b); ssRes += r * r; }
        double s2 = n > 2 ? ssRes / (n - 2) : 0;
        double r2 = syy > 0 ? 1 - ssRes / syy : 0;
        if (r2 < MinR2)
            throw new CalibrationException($"poor fit: R² = {r2:0.###} < {MinR2} over {n} points (wall power does not follow measured power here: a noisy BMC, other load on the node, or too short steps); rerun on an idle node with longer --step-seconds");
        return new WallModel
        {
            Node = node, Date = date, ToolVersion = Core.ToolInfo.Version, A = a, B = b,
            VarA = s2 / sxx, VarB = s2 * (1.0 / n + mx * mx / sxx), CovAB = -mx * s2 / sxx,
            ResidualSigmaW = Math.Sqrt(s2), R2 = r2, Points = n, MinMeasuredW = min, MaxMeasuredW = max,
            Domains = domains, BmcInterface = bmcInterface, WindowS = windowS,
        };
    }

    /// <summary>
    /// Wall-side energy of a job from its measured energy (J), its elapsed time (s) and its share of the node
    /// (<paramref name="fraction"/>, 0..1: the job's attributed fraction of the node's measured energy; 1 exclusive):
    /// E = A·E_job + B·T·f. Standard uncertainty (k = 1): the parameters' covariance, plus the residual σ taken as fully
    /// correlated over the job (a node's deviation from its line does not average out): u² = E_job²·VarA + (T·f)²·VarB
    /// + 2·E_job·T·f·CovAB + (σ·T·f)².
    /// </summary>
    public (double EnergyJ, double UncertaintyJ) JobWallEnergy(double jobMeasuredJ, double elapsedS, double fraction)
    {
        double tf = elapsedS * Math.Clamp(fraction, 0, 1);
        double e = A * jobMeasuredJ + B * tf;
        double u2 = jobMeasuredJ * jobMeasuredJ * VarA + tf * tf * VarB + 2 * jobMeasuredJ * tf * CovAB + Math.Pow(ResidualSigmaW * tf, 2);
        return (e, Math.Sqrt(Math.Max(0, u2)));
    }

    /// <summary>What one job's use of the model must say (an extrapolation, <see cref="WallSideEnergy.ForJob"/>); not part
    /// of the stored model.</summary>
    [JsonIgnore]
    public string JobNote { get; init; } = "";

    /// <summary>One line for reports and Parquet metadata (with <see cref="JobNote"/> when a job's use needs it).</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"MODEL wall W = {A:0.####} × ({Domains}) W + {B:0.##} W; node {Node}, calibrated {Date:yyyy-MM-ddTHH:mm:ssZ} by alumet-hpc {ToolVersion} " +
        $"against the BMC ({BmcInterface}); {Points} points over {MinMeasuredW:0.#}-{MaxMeasuredW:0.#} W, R² {R2:0.####}, residual σ {ResidualSigmaW:0.##} W")
        + (JobNote.Length > 0 ? "; " + JobNote : "");

    public string ToJson() => JsonSerializer.Serialize(this, WallModelJsonContext.Default.WallModel);

    public static WallModel FromJson(string json) =>
        JsonSerializer.Deserialize(json, WallModelJsonContext.Default.WallModel) ?? throw new JsonException("empty model");

    /// <summary>The model file of a node in the calibration directory.</summary>
    public static string PathFor(string dir, string node) => Path.Combine(dir, node + ".json");

    /// <summary>
    /// Loads a node's model when its file exists and can be trusted: a regular file, not a symbolic link, writable by
    /// neither group nor others, in a directory with the same properties (the directory is the administrator's, from the
    /// system configuration; a user can plant nothing there). Null otherwise, with <paramref name="problem"/> saying why.
    /// </summary>
    public static WallModel? TryLoad(string dir, string node, out string problem)
    {
        string path = PathFor(dir, node);
        problem = "";
        try
        {
            if (!File.Exists(path)) { problem = $"no calibration model for node {node} ({path}): run `alumet-hpc calibrate` on it"; return null; }
            if (!RootOwnedNotWritable(dir) || !RootOwnedNotWritable(path))
            {
                problem = $"ignoring {path}: it or its directory is a symbolic link or writable by group or others (chmod go-w)";
                return null;
            }
            return FromJson(File.ReadAllText(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            problem = $"cannot read calibration model {path}: {e.Message}";
            return null;
        }
    }

    private static bool RootOwnedNotWritable(string path)
    {
        FileSystemInfo info = Directory.Exists(path) ? new DirectoryInfo(path) : new FileInfo(path);
        if (info.LinkTarget is not null) return false;
        return (info.UnixFileMode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) == 0;
    }

    /// <summary>Writes the model root-owned, mode 0644, atomically (temp file + rename), creating the directory 0755.</summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        string path = PathFor(dir, Node), tmp = path + $".tmp{Environment.ProcessId}";
        File.WriteAllText(tmp, ToJson() + "\n");
        File.SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.Move(tmp, path, overwrite: true);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(WallModel))]
internal sealed partial class WallModelJsonContext : JsonSerializerContext;
