using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Schedulers.Slurm;

public static partial class SlurmHook
{
    /// <summary>
    /// The Prolog (<paramref name="context"/> "prolog" or "prolog_slurmd") or Epilog ("epilog", "epilog_slurmd").
    /// Always returns 0: a non-zero Prolog/Epilog drains the node. Every outcome is one line in the log
    /// (configure <see cref="Core.Log"/> first: [paths].log_file + syslog; <see cref="SlurmCommand"/> does).
    /// </summary>
    public static int Run(string context, IReadOnlyDictionary<string, string> env, AlumetConfig config, string? configPath)
        => Run(context, env, config, configPath, LauncherControl.Instance);
}

/// <summary>The production <see cref="ISamplerControl"/>: the generic detached-sampler machinery of Jobs/.</summary>
internal sealed class LauncherControl : ISamplerControl
{
    public static readonly LauncherControl Instance = new();

    public (bool Ok, string Message) Start(SlurmJob job, AlumetConfig config, string? configPath)
    {
        var r = SamplerLauncher.Start(new SamplerLaunch(job.Identity, configPath, job.Gpus.Entries, job.Sluid, Raw: job.RawRequested), config);
        return (r.Ok, r.Message);
    }

    public (bool Ok, string Message) StopAndFinalize(SlurmJob job, AlumetConfig config)
    {
        var r = SamplerLauncher.StopAndFinalize(job.Identity, config);
        return (r.Status != "error", $"{r.Status}: {r.Message}");
    }
}
