using System.CommandLine;
using Alumet.Hpc.Config;

namespace Alumet.Hpc.Schedulers.Slurm;

/// <summary>
/// <c>alumet-hpc slurm prolog|epilog [--config FILE]</c>, and the bare binary as <c>Prolog=</c>/<c>Epilog=</c>
/// (slurmd passes no argv: <see cref="RunBare"/> dispatches on SLURM_SCRIPT_CONTEXT). Exit status always 0.
/// </summary>
public static class SlurmCommand
{
    public static Command Create()
    {
        var cmd = new Command("slurm", "Slurm Prolog/Epilog hooks (run by slurmd as root; always exit 0)");
        foreach (string kind in new[] { "prolog", "epilog" })
        {
            var config = new Option<string?>("--config", "-c")
            {
                Description = "TOML config file (default: $ALUMET_HPC_CONFIG, then /etc/alumet-hpc/alumet.toml, then built-in defaults)",
            };
            var sub = new Command(kind, kind == "prolog"
                ? "Start the job's sampler on this node (Slurm Prolog; reads the SLURM_* environment)"
                : "Stop the job's sampler and write its Parquet file and accounting row (Slurm Epilog)") { config };
            sub.SetAction(r => RunHook(kind, r.GetValue(config)));
            cmd.Subcommands.Add(sub);
        }
        return cmd;
    }

    /// <summary>A bare run (no arguments) under slurmd: SLURM_SCRIPT_CONTEXT says which hook; null if not a hook.</summary>
    public static int? RunBare()
    {
        string? context = Environment.GetEnvironmentVariable("SLURM_SCRIPT_CONTEXT");
        return context is "prolog_slurmd" or "epilog_slurmd" ? RunHook(context, null) : null;
    }

    /// <summary>Loads the config, sets up the log (file + syslog) and runs the hook. Always 0.</summary>
    public static int RunHook(string context, string? configPath) =>
        HookHost.Run($"slurm {context}", configPath, (env, loaded) => SlurmHook.Run(context, env, loaded.Config, configPath), SlurmHook.Scheduler);
}
