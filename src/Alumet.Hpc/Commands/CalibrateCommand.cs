using System.CommandLine;
using System.Globalization;
using Alumet.Hpc.Calibration;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Sources.Bmc;
using Alumet.Hpc.Sources.Estimate;
using Alumet.Hpc.Sources.Nvml;

namespace Alumet.Hpc.Commands;

/// <summary>
/// <c>alumet-hpc calibrate</c>: runs a load ladder on an otherwise idle node while reading the BMC and RAPL+NVML, fits
/// wall W = a × measured W + b and stores the model as <c>[calibration] dir/&lt;node&gt;.json</c> (README "Wall-side energy").
/// Exit codes: 0 stored (or printed with --no-save), 1 calibration impossible or poor (one sentence why), 2 bad arguments.
/// </summary>
public static class CalibrateCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var steps = new Option<string>("--steps") { Description = "CPU load of each ladder step, % of every CPU (0 = idle)", DefaultValueFactory = _ => "0,25,50,75,100" };
        var stepS = new Option<double>("--step-seconds") { Description = "length of each step, s", DefaultValueFactory = _ => 30 };
        var settleS = new Option<double>("--settle-seconds") { Description = "discarded at the start of each step (fans, BMC averaging), s", DefaultValueFactory = _ => 10 };
        var windowS = new Option<double>("--window-seconds") { Description = "one point per steady window of this length, s", DefaultValueFactory = _ => 5 };
        var node = new Option<string?>("--node") { Description = "node name the model is stored under (default: this host's name)" };
        var noSave = new Option<bool>("--no-save") { Description = "print the model without storing it" };
        var json = new Option<bool>("--json") { Description = "print the model as JSON" };
        var cmd = new Command("calibrate", "Fit this node's wall power (BMC) against RAPL+NVML over a load ladder and store the model")
        {
            config, steps, stepS, settleS, windowS, node, noSave, json,
        };
        cmd.SetAction(r => Run(r.GetValue(config), r.GetValue(steps)!, r.GetValue(stepS), r.GetValue(settleS), r.GetValue(windowS),
            r.GetValue(node), r.GetValue(noSave), r.GetValue(json), Console.Out, Console.Error));
        return cmd;
    }

    public static int Run(string? configPath, string steps, double stepS, double settleS, double windowS, string? node, bool noSave, bool json,
                          TextWriter output, TextWriter progress)
    {
        AlumetConfig cfg;
        try { cfg = ConfigLoader.Load(configPath).Config; }
        catch (ConfigException e) { progress.WriteLine($"alumet-hpc: {e.Message}"); return 2; }
        var percents = new List<int>();
        foreach (string p in steps.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v > 100)
            {
                progress.WriteLine($"alumet-hpc: calibrate: --steps '{steps}': each step is a CPU load from 0 to 100 (e.g. 0,25,50,75,100)");
                return 2;
            }
            percents.Add(v);
        }
        if (percents.Count < 2 || !(stepS > 0) || !(settleS >= 0) || !(windowS > 0) || settleS + windowS > stepS)
        {
            progress.WriteLine("alumet-hpc: calibrate: need at least 2 steps and --settle-seconds + --window-seconds <= --step-seconds");
            return 2;
        }
        node ??= Environment.MachineName;
        if (!Schedulers.SchedulerInput.IsName(node))
        {
            // The model is stored as <dir>/<node>.json: a name with '/' or ".." would write it elsewhere.
            progress.WriteLine($"alumet-hpc: calibrate: --node {Schedulers.SchedulerInput.Quote(node)} is not a node name (letters, digits, '.', '-' and '_', starting with a letter or digit); give the node's host name");
            return 2;
        }
        Log.Configure(cfg.Paths.LogFile, "alumet-hpc", syslog: false, stderr: false);

        // The measured side: RAPL and NVML only (a model estimate cannot calibrate anything), and the BMC, required.
        cfg.Sources.Estimate = "off";
        if (cfg.Sources.Bmc == "off") cfg.Sources.Bmc = "auto";
        SourceSet sources;
        try { sources = SourceFactory.Create(cfg, NvmlSlot.Create); }
        catch (MissingHardwareException e) { progress.WriteLine($"alumet-hpc: calibrate: {e.Message}"); return 1; }
        sources.StartCrossCheck();
        using (sources)
        {
            var bmc = sources.Slots.Select(s => s.Source).OfType<BmcSource>().FirstOrDefault();
            if (bmc is null)
            {
                BmcSource.TryOpen(cfg, out string why);
                progress.WriteLine($"alumet-hpc: calibrate: no BMC power reading on this node ({why}); set [bmc] host (LAN) or load the ipmi_si and ipmi_devintf modules (in-band)");
                return 1;
            }
            var measured = sources.Slots.Where(s => s.Source is not BmcSource and not EstimateSource).ToList();
            if (measured.Count == 0)
            {
                // No problem reported: the config turned both off.
                string why = sources.Problems.Count > 0 ? string.Join("; ", sources.Problems)
                    : $"[sources] rapl = \"{cfg.Sources.Rapl}\" and nvml = \"{cfg.Sources.Nvml}\"; set either to \"auto\"";
                progress.WriteLine($"alumet-hpc: calibrate: no RAPL or NVML counter on this node ({why}): there is nothing measured to calibrate against the BMC");
                return 1;
            }
            string domains = string.Join("+", measured.SelectMany(s => s.Source.Channels).Select(c => c.Resource.Kind)
                .Where(k => k.CountsInTotal()).Distinct().Select(k => k.Wire()));

            var date = DateTime.UtcNow;
            var run = new CalibrationRun(measured, bmc, new Ladder(percents, stepS, settleS, windowS), progress);
            var points = run.Run(CancellationToken.None);
            WallModel model;
            try { model = WallModel.Fit(points, node, date, domains, bmc.Interface.Wire(), windowS); }
            catch (CalibrationException e)
            {
                progress.WriteLine($"alumet-hpc: calibrate: {e.Message}");
                return 1;
            }
            if (json) output.WriteLine(model.ToJson());
            else
            {
                output.WriteLine(model.Describe());
                foreach (var p in points)
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {p.Step,-10} measured {p.MeasuredW,8:0.0} W  wall {p.WallW,8:0.0} W  model {model.A * p.MeasuredW + model.B,8:0.0} W"));
            }
            if (noSave) return 0;
            try { model.Save(cfg.Calibration.Dir); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                progress.WriteLine($"alumet-hpc: calibrate: cannot store the model in {cfg.Calibration.Dir}: {e.Message}; run as root or set [calibration] dir");
                return 1;
            }
            progress.WriteLine($"calibrate: model stored in {WallModel.PathFor(cfg.Calibration.Dir, node)}");
            return 0;
        }
    }
}
