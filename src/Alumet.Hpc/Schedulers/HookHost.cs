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
    /// <param name="scheduler">The scheduler whose jobs the hook handles: as root, a <c>state_dir</c> a user could have
    /// planted is refused, the hook doing nothing (<see cref="Jobs.RootOnly.StateDirRefused"/>), and the scheduler's
    /// directory in it is kept root's (<see cref="CloseSchedulerStateDir"/>) before the hook creates anything in it.</param>
    public static int Run(string what, string? configPath, Func<IReadOnlyDictionary<string, string>, LoadedConfig, int> hook, string? scheduler = null)
    {
        // A soft RLIMIT_NOFILE below what a hook and the processes it starts need (the node sampler, finalize-job) is
        // raised toward the hard one, as the sampler raises its own: never refused, the hook goes on with what it got.
        Jobs.DescriptorLimit.Raise();
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
            if (scheduler is not null)
            {
                // A state_dir a user could have planted or could swap is not used at all: nothing measured, one line.
                if (Jobs.RootOnly.StateDirRefused(loaded.Config.Paths.StateDir) is { } refused)
                {
                    Log.Error($"{what}: {refused}; nothing done");
                    return 0;
                }
                CloseSchedulerStateDir(what, loaded.Config.Paths.StateDir, scheduler);
            }
            hook(env, loaded);
            DrainOutbox(what, loaded.Config);
            return 0;
        }
        catch (Exception e)
        {
            // The contract with the scheduler comes first: exit 0. Said once, in the log (never thrown: Log).
            Log.Error($"{what}: failed: {ErrorText.Describe(e)}");
            return 0;
        }
    }

    /// <summary>
    /// <c>&lt;state_dir&gt;/&lt;scheduler&gt;</c> holds every job's state directory and its <c>.finalized</c> marker (job id,
    /// status, reason): root's only (0700), as the dataset's directories cannot be listed (README, "Who sees what").
    /// It used to be created 0755 under the 0751 /var/lib/alumet-hpc, so any user listed every job of the node and read
    /// each one's status and reason. Created so by the hook, and closed when an earlier version left it open; never
    /// through a symbolic link. A failure is logged (unless state_dir itself is unusable: the hook says that) and the hook goes on.
    /// </summary>
    internal static void CloseSchedulerStateDir(string what, string stateRoot, string scheduler)
    {
        if (Native.Libc.getuid() != 0) return;
        string dir = Path.Combine(stateRoot, scheduler);
        try
        {
            RootsOnly(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A state_dir that cannot be made at all fails the hook itself, which says so: said once.
            if (Directory.Exists(stateRoot)) Log.Warn($"{what}: cannot make {dir} root's only: {ErrorText.Describe(e)}");
        }
    }

    /// <summary>
    /// Makes <paramref name="dir"/> 0700, or closes it to others when it exists open (left so by an earlier version); a
    /// symbolic link is left as it is (never followed).
    /// </summary>
    internal static void RootsOnly(string dir)
    {
        const UnixFileMode rootOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
        var info = new DirectoryInfo(dir);
        if (!info.Exists) Directory.CreateDirectory(dir, rootOnly);
        else if (info.LinkTarget is null && (info.UnixFileMode & ~rootOnly) != 0) info.UnixFileMode = rootOnly;
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
        if (r.Stored > 0 || r.Retryable > 0) // unreadable entries alone: said once by the drain, not at every hook
            Log.Info($"{what}: outbox: {r.Stored} queued row(s) stored, {r.Left} left{(r.Problem is null ? "" : $" ({r.Problem})")}");
    }
}
