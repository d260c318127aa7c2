using System.Diagnostics;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Schedulers.Slurm;

/// <summary>What the hooks ask of the job machinery: start a job's sampler, stop and finalize it.</summary>
internal interface ISamplerControl
{
    /// <returns>Whether a sampler runs for the job, and one log-ready line saying what happened.</returns>
    (bool Ok, string Message) Start(SlurmJob job, AlumetConfig config, string? configPath);

    /// <returns>Whether the job got its row, and what happened. The finalizer writes the Parquet file
    /// readable by the job's user only and the accounting row.</returns>
    (bool Ok, string Message) StopAndFinalize(SlurmJob job, AlumetConfig config);
}

public static partial class SlurmHook
{
    /// <summary>The hook logic with its job machinery injected (tests use a fake).</summary>
    internal static int Run(string context, IReadOnlyDictionary<string, string> env, AlumetConfig config, string? configPath, ISamplerControl control)
    {
        long t0 = Stopwatch.GetTimestamp();
        string kind = "hook";
        try
        {
            kind = context switch
            {
                "prolog" or "prolog_slurmd" => "prolog",
                "epilog" or "epilog_slurmd" => "epilog",
                _ => throw new HookRefusal($"unknown hook context {SchedulerInput.Quote(context)} (expected prolog or epilog)"),
            };
            // A Prolog= line pointing at the epilog wrapper (or the reverse) would stop samplers at job start.
            if (env.TryGetValue("SLURM_SCRIPT_CONTEXT", out string? sc) && sc is "prolog_slurmd" or "epilog_slurmd" && !sc.StartsWith(kind, StringComparison.Ordinal))
                throw new HookRefusal($"called as {kind} but SLURM_SCRIPT_CONTEXT is {sc}: check Prolog=/Epilog= in slurm.conf");

            SlurmJobParse parse = ParseJob(env, config.Cluster.Name);
            if (!parse.Ok) throw new HookRefusal(parse.Error!);
            SlurmJob job = parse.Job!;
            string where = $"slurm {kind} job {job.Identity.JobId} on {job.Identity.Node}";

            var (ok, outcome) = kind == "prolog" ? control.Start(job, config, configPath) : control.StopAndFinalize(job, config);
            if (ok) Log.Info($"{where}: {outcome} ({Ms(t0)})");
            else Log.Error($"{where}: {outcome} ({Ms(t0)})");
        }
        catch (HookRefusal r)
        {
            Log.Error($"slurm {kind}: refused: {r.Message}; nothing done ({Ms(t0)})");
        }
        catch (Exception e)
        {
            // The contract with slurmd is exit 0 whatever happens; the log says what went wrong, in our words (ErrorText).
            Log.Error($"slurm {kind}: failed: {ErrorText.Describe(e)} ({Ms(t0)})");
        }
        return 0;
    }

    private static string Ms(long t0) => $"{Stopwatch.GetElapsedTime(t0).TotalMilliseconds.ToString("F1", System.Globalization.CultureInfo.InvariantCulture)} ms";

    private sealed class HookRefusal(string message) : Exception(message);
}
