using System.Collections;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Outputs.Accounting;

namespace Alumet.Hpc.Schedulers;

/// <summary>
/// What every scheduler hook does around its own logic: snapshot the environment, load the config (system paths:
/// hooks run as root or oar), send the log to the log file and syslog, and exit 0 whatever happens — a non-zero
/// hook drains a Slurm node or suspects an OAR node. A broken config is logged to the default log file and
/// syslog, and nothing is done.
/// </summary>
public static class HookHost
{
    public static int Run(string what, string? configPath, Func<IReadOnlyDictionary<string, string>, LoadedConfig, int> hook)
    {
        try
        {
            var env = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
                if (e.Key is string k && e.Value is string v) env[k] = v;

            LoadedConfig loaded;
            try { loaded = ConfigLoader.Load(configPath, env, DefaultPathPolicy.System); }
            catch (Exception e)
            {
                Log.Configure(new PathsSection().LogFile, "alumet-hpc", syslog: true, stderr: false);
                Log.Error($"{what}: configuration: {e.Message}; nothing done");
                return 0;
            }
            Log.Configure(loaded.Config.Paths.LogFile, "alumet-hpc", syslog: true, stderr: false);
            hook(env, loaded);
            DrainOutbox(what, loaded.Config);
            return 0;
        }
        catch (Exception)
        {
            return 0; // even the log failed: the contract with the scheduler comes first
        }
    }

    /// <summary>Every hook retries the rows queued on its node (earlier jobs' rows whose database write failed), within
    /// what is left of its database budget (<c>[database] hook_wait_s</c>, shared with its own row).</summary>
    private static void DrainOutbox(string what, AlumetConfig cfg)
    {
        var outbox = Outbox.Of(cfg);
        if (outbox.Pending().Count == 0) return;
        var wait = TimeSpan.FromSeconds(cfg.Database.HookWaitS) - Outbox.SpentInProcess;
        if (wait <= TimeSpan.Zero) return;
        var r = outbox.TimedDrain(cfg, wait);
        if (r.Stored > 0 || r.Left > 0)
            Log.Info($"{what}: outbox: {r.Stored} queued row(s) stored, {r.Left} left{(r.Problem is null ? "" : $" ({r.Problem})")}");
    }
}
