using System.CommandLine;
using Alumet.Hpc.Config;

namespace Alumet.Hpc.Schedulers.Oar;

/// <summary>
/// <c>alumet-hpc oar prologue|epilogue JOBID USER NODEFILE</c> and
/// <c>alumet-hpc oar resource-manager init|clean JOBID USER NODE RESOURCES_FILE</c>: the OAR hooks
/// (called by the wrappers in oar/, as root through oardodo). Always exit 0.
/// </summary>
public static class OarCommand
{
    public static Command Create()
    {
        var oar = new Command("oar", "OAR hooks (PROLOGUE_EXEC_FILE, EPILOGUE_EXEC_FILE, JOB_RESOURCE_MANAGER_FILE wrappers in oar/); always exit 0");
        oar.Subcommands.Add(Hook("prologue", "PROLOGUE_EXEC_FILE: start the job's sampler on the first node (unless the resource-manager hook did)"));
        oar.Subcommands.Add(Hook("epilogue", "EPILOGUE_EXEC_FILE: stop and finalize the sampler the prologue started"));
        oar.Subcommands.Add(Hook("resource-manager", "JOB_RESOURCE_MANAGER_FILE wrapper: init|clean on every node of the job"));
        return oar;
    }

    private static Command Hook(string kind, string description)
    {
        var config = new Option<string?>("--config", "-c") { Description = "TOML config file (default: $ALUMET_HPC_CONFIG, then /etc/alumet-hpc/alumet.toml)" };
        var args = new Argument<string[]>("args") { Arity = ArgumentArity.ZeroOrMore, Description = "as OAR passes them" };
        var jobName = new Option<string?>("--job-name") { Description = "the job's name (oarsub -n), from the resource manager's job hash" };
        var jobType = new Option<string[]>("--job-type") { Description = "one of the job's types (oarsub -t), from the resource manager's job hash; alumet=raw asks for raw storage" };
        var cmd = new Command(kind, description) { config, args, jobName, jobType };
        cmd.SetAction(r => Invoke(kind, r.GetValue(args) ?? Array.Empty<string>(), r.GetValue(config), r.GetValue(jobName), r.GetValue(jobType)));
        return cmd;
    }

    /// <summary>Loads the config (a broken config is logged, never an error exit) and runs the hook. Always 0.</summary>
    public static int Invoke(string kind, IReadOnlyList<string> argv, string? configPath, string? jobName = null, IReadOnlyList<string>? jobTypes = null) =>
        HookHost.Run($"oar {kind}", configPath, (env, loaded) =>
            OarHook.Run(kind, argv, env, loaded.Config, loaded.Source == ConfigLoader.DefaultsSource ? null : loaded.Source, jobName, jobTypes),
            OarHook.Scheduler);
}
