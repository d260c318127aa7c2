using System.Diagnostics;
using Alumet.Hpc.Calibration;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Fakes.Nvml;

namespace Alumet.Hpc.Tests.Calibration;

/// <summary>
/// `alumet-hpc calibrate` through the native binary, against ipmi_sim, a generated powercap tree and the fake NVML library:
/// a scripted node whose wall power is exactly 1.25 × measured + 80 W at every ladder step. The test follows the ladder
/// from the command's own progress lines ("step k/n") and sets the measured power and the BMC for that step.
/// </summary>
public class CalibrateCommandTests
{
    private const double A = 1.25, B = 80;

    private static string Toml(BmcSimulator sim, string calibDir) => $"""
        [bmc]
        host = "{sim.Host}"
        user = "{BmcSimulator.User}"
        password_file = "{sim.PasswordFile}"
        privilege = "admin"
        hz = 10

        [calibration]
        dir = "{calibDir}"
        """;

    private static (int Rc, string Out, string Err) Calibrate(TestInstallation install, Action<int>? onStep, params string[] args)
    {
        var psi = new ProcessStartInfo(TestInstallation.Binary()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("calibrate");
        psi.ArgumentList.Add("--config");
        psi.ArgumentList.Add(install.ConfigPath);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = new System.Text.StringBuilder();
        var stdout = p.StandardOutput.ReadToEndAsync();
        string? line;
        while ((line = p.StandardError.ReadLine()) is not null)
        {
            err.AppendLine(line);
            var m = System.Text.RegularExpressions.Regex.Match(line, @"^calibrate: step (\d+)/");
            if (m.Success) onStep?.Invoke(int.Parse(m.Groups[1].Value));
        }
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, err.ToString());
    }

    /// <summary>
    /// The measured power is a GPU's whose counter the fake NVML library computes from the clock at each of the
    /// calibration's reads, on its reading thread (FakeNvml.SetPower): RAPL's counters stay still. It was RAPL's counter
    /// file advanced by a test thread every ~1 ms, which a loaded machine delays by tens of ms at a window's edge: a
    /// 1.5 s window then holds up to ~2 % more or less than its time's energy, and the fit followed (a = 1.2338 in a CI
    /// run at load 12-18). A counter in a file is only as fresh as its writer; the library's is exact at any load.
    /// </summary>
    [Fact]
    public void AScriptedLadderRecoversAAndBToOnePercent()
    {
        using var sim = new BmcSimulator("watts 80");
        using var calib = new TempTree("calib");
        using var gpu = new FakeNvml("dev 0 bus_id 00000000:3B:00.0\ndev 0 energy_line power\n");
        gpu.SetPower("power", 0);
        using var install = new TestInstallation(PowercapTree.Standard(1), sourcesToml: "rapl = \"on\"\nnvml = \"auto\"\nbmc = \"on\"",
            pathsToml: $"nvml_library = \"{gpu.LibraryPath}\"", extraToml: Toml(sim, calib.PathOf("models")));

        // The fake node: GPU power P, wall = A·P + B on the BMC.
        void Step(int k)
        {
            double p = 40 * k; // 40, 80, ... 200 W
            gpu.SetPower("power", p);
            sim.Script($"watts {A * p + B}");
        }

        var (rc, output, err) = Calibrate(install, Step, "--steps", "0,5,10,15,20", "--step-seconds", "4", "--settle-seconds", "1",
                                          "--window-seconds", "1.5", "--node", "testnode", "--json");

        Assert.True(rc == 0, $"rc {rc}: {err}");
        File.WriteAllText(Path.Combine(Path.GetTempPath(), "alumet-calibrate-last.json"), output); // the fit, for the record
        var model = WallModel.TryLoad(calib.PathOf("models"), "testnode", out string problem);
        Assert.True(model is not null, problem);
        Assert.InRange(model!.A, A * 0.99, A * 1.01);
        Assert.InRange(model.B, B * 0.99, B * 1.01);
        Assert.True(model.R2 > 0.999, $"R² {model.R2}");
        Assert.True(model.Points >= 8, $"{model.Points} points");
        Assert.InRange(model.MinMeasuredW, 40 * 0.99, 40 * 1.01);
        Assert.InRange(model.MaxMeasuredW, 200 * 0.99, 200 * 1.01);
        Assert.Equal("cpu_package+dram+gpu", model.Domains);
        Assert.Equal("ipmi-dcmi", model.BmcInterface);
        Assert.Equal(model, WallModel.FromJson(output));
    }

    /// <summary>The model is stored as [calibration] dir/&lt;node&gt;.json: a --node with a path in it wrote outside the dir.</summary>
    [Fact]
    public void ANodeNameWithAPathInItIsRefusedAndNothingIsWritten()
    {
        using var calib = new TempTree("calib");
        using var install = new TestInstallation(PowercapTree.Standard(1), sourcesToml: "rapl = \"on\"\nnvml = \"off\"",
            extraToml: $"[bmc]\ndevice = \"{calib.PathOf("no-ipmi0")}\"\n\n[calibration]\ndir = \"{calib.PathOf("models")}\"");
        var (rc, output, err) = Calibrate(install, null, "--node", "../escaped", "--step-seconds", "2", "--settle-seconds", "0", "--window-seconds", "1");
        Assert.Equal((2, "", "alumet-hpc: calibrate: --node \"../escaped\" is not a node name (letters, digits, '.', '-' and '_', starting with a letter or digit); give the node's host name\n"), (rc, output, err));
        Assert.False(File.Exists(calib.PathOf("escaped.json")));
    }

    [Fact]
    public void NoBmcIsASentenceAndExitCode1()
    {
        using var calib = new TempTree("calib");
        using var install = new TestInstallation(PowercapTree.Standard(1), sourcesToml: "rapl = \"on\"\nnvml = \"off\"",
            extraToml: $"[bmc]\ndevice = \"{calib.PathOf("no-ipmi0")}\"\n\n[calibration]\ndir = \"{calib.PathOf("models")}\"");
        var (rc, _, err) = Calibrate(install, null, "--step-seconds", "2", "--settle-seconds", "0", "--window-seconds", "1");
        Assert.Equal(1, rc);
        Assert.StartsWith("alumet-hpc: calibrate: no BMC power reading on this node (", err);
        Assert.Contains("set [bmc] host", err);
        Assert.Single(err.Trim().Split('\n'));
    }

    /// <summary>
    /// README "Wall-side energy": no RAPL or NVML counter beside the BMC is one sentence, exit 1, nothing written. With
    /// both turned off in the config the sentence said "on this node ()": now it names the two keys and the fix.
    /// </summary>
    [Fact]
    public void NoMeasuredCounterIsASentenceAndExitCode1()
    {
        const string bmcOnly = "rapl = \"off\"\nnvml = \"off\"\nbmc = \"on\"";
        using var calib = new TempTree("calib");
        using var sim = new BmcSimulator("watts 80");
        using var install = new TestInstallation(PowercapTree.Standard(1), sourcesToml: bmcOnly, extraToml: Toml(sim, calib.PathOf("models")));
        var (rc, output, err) = Calibrate(install, null, "--node", "n1", "--step-seconds", "2", "--settle-seconds", "0", "--window-seconds", "1");
        Assert.Equal((1, "", "alumet-hpc: calibrate: no RAPL or NVML counter on this node ([sources] rapl = \"off\" and nvml = \"off\"; "
                     + "set either to \"auto\"): there is nothing measured to calibrate against the BMC\n"), (rc, output, err));
        Assert.False(File.Exists(calib.PathOf("models", "n1.json")));
    }
}
