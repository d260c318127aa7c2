using System.Diagnostics;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Jobs;

/// <summary>What a prolog asks for: the job, the config file to pass on, its GPUs, Slurm's SLUID.</summary>
public sealed record SamplerLaunch(JobIdentity Job, string? ConfigPath, IReadOnlyList<int> GpuIndices, string? Sluid, bool Exclusive = false);

public sealed record LaunchResult(bool Ok, int Pid, string Message);

public sealed record StopResult(string Status, string Message);

/// <summary>
/// Starts and stops a job's sampler from scheduler hooks. Both never throw and return within their bound:
/// a hook that fails or hangs drains a Slurm node or suspects an OAR node.
/// </summary>
public static class SamplerLauncher
{
    /// <summary>How long Start waits for the sampler to detach (setsid) before the hook may exit.</summary>
    public static TimeSpan DetachWait { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Starts <c>alumet-hpc sample</c> for the job. Arguments go through an argv array (never a shell). Waits until
    /// the sampler has written its pid file, i.e. is in its own session: Slurm kills the prolog's process group
    /// as soon as the prolog exits, and a child still in it would die with it.
    /// </summary>
    public static LaunchResult Start(SamplerLaunch launch, AlumetConfig config, string? executable = null)
    {
        var job = launch.Job;
        string dir = job.StateDirectory(config.Paths.StateDir);
        try
        {
            if (SamplerPid.Read(dir) is { } existing && existing.IsAlive(config.Paths.ProcfsRoot))
                return new LaunchResult(true, existing.Pid, $"sampler already running for job {job.JobId} (pid {existing.Pid})");

            Directory.CreateDirectory(dir);
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            File.Delete(Path.Combine(dir, SamplerFiles.Pid));

            string exe = executable ?? Environment.ProcessPath ?? throw new InvalidOperationException("cannot find our own executable");
            var psi = new ProcessStartInfo(exe)
            {
                UseShellExecute = false,
                // Our stdio may be the scheduler's pipe (OAR waits for it to close): the child gets fresh pipes
                // that die with us, and redirects to /dev/null as soon as it runs.
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                WorkingDirectory = "/",
            };
            foreach (string a in SampleArguments(launch)) psi.ArgumentList.Add(a);
            if (launch.ConfigPath is { } cfgPath)
            {
                psi.ArgumentList.Add("--config");
                psi.ArgumentList.Add(cfgPath);
            }
            using var process = Process.Start(psi) ?? throw new InvalidOperationException("Process.Start returned null");
            process.StandardInput.Close();

            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < DetachWait)
            {
                if (SamplerPid.Read(dir) is { } pid && pid.Pid == process.Id)
                    return new LaunchResult(true, pid.Pid, $"sampler started for job {job.JobId} (pid {pid.Pid}) in {deadline.Elapsed.TotalMilliseconds:0} ms");
                if (process.HasExited)
                    return new LaunchResult(false, process.Id, $"sampler for job {job.JobId} exited at start with code {process.ExitCode}; see {config.Paths.LogFile}");
                Thread.Sleep(2);
            }
            return new LaunchResult(false, process.Id, $"sampler for job {job.JobId} did not detach within {DetachWait.TotalSeconds} s");
        }
        catch (Exception e)
        {
            return new LaunchResult(false, 0, $"could not start the sampler for job {job.JobId}: {e.Message}");
        }
    }

    public static IEnumerable<string> SampleArguments(SamplerLaunch launch)
    {
        var job = launch.Job;
        yield return "sample";
        yield return "--detach";
        yield return "--scheduler"; yield return job.Scheduler;
        yield return "--cluster"; yield return job.Cluster;
        yield return "--job-id"; yield return job.JobId;
        yield return "--user"; yield return job.User;
        yield return "--uid"; yield return job.Uid.ToString();
        yield return "--node"; yield return job.Node;
        // The prolog fixes the run id, so that a sampler restarted for the same run keeps it.
        yield return "--run-id"; yield return job.RunId.Length > 0 ? job.RunId : RunId.Of(launch.Sluid, DateTime.UtcNow);
        if (launch.GpuIndices.Count > 0) { yield return "--gpus"; yield return string.Join(',', launch.GpuIndices); }
        if (launch.Sluid is { } sluid) { yield return "--sluid"; yield return sluid; }
        if (launch.Exclusive) yield return "--exclusive";
        // One token with '=': a name that starts with '-' or '@' is never read as an option or a response file.
        if (job.JobName.Length > 0) yield return $"--job-name={job.JobName}";
    }

    /// <summary>
    /// Ends the job's sampler: SIGTERM, then wait for its final flush and accounting row up to
    /// <c>stop_timeout_s</c>. A sampler that does not finish in time is killed and the job finalized here as partial
    /// from its spool; one that already died is finalized the same way. No state at all means the prolog never
    /// ran here: the row says "not measured" and why.
    /// </summary>
    public static StopResult StopAndFinalize(JobIdentity job, AlumetConfig config)
    {
        string dir = job.StateDirectory(config.Paths.StateDir);
        try
        {
            if (JobFinalizer.FinalizedLine(dir) is { } done)
                return new StopResult("already", $"job {job.JobId}: already finalized ({done})");
            var pid = SamplerPid.Read(dir);
            if (pid is null && !File.Exists(Path.Combine(dir, Spool.SpoolWriter.MetaFile)))
            {
                if (job.RunId.Length == 0) job = job with { RunId = RunId.FromStart(DateTime.UtcNow) };
                JobFinalizer.RecordNotMeasured(job, config, "the prolog did not start a sampler for this job on this node (prolog not configured, failed, or PrologFlags without Alloc)");
                return new StopResult("not_measured", $"job {job.JobId}: no sampler state in {dir}");
            }

            if (pid is { } p && p.IsAlive(config.Paths.ProcfsRoot))
            {
                Native.Libc.kill(p.Pid, 15);
                var sw = Stopwatch.StartNew();
                while (sw.Elapsed.TotalSeconds < config.Sampler.StopTimeoutS)
                {
                    if (JobFinalizer.FinalizedLine(dir) is { } line)
                        return new StopResult("stopped", $"job {job.JobId}: sampler finalized in {sw.Elapsed.TotalMilliseconds:0} ms ({line})");
                    if (!p.IsAlive(config.Paths.ProcfsRoot)) break;
                    Thread.Sleep(10);
                }
                if (p.IsAlive(config.Paths.ProcfsRoot))
                {
                    Native.Libc.kill(p.Pid, 9);
                    Log.Warn($"job {job.JobId}: sampler pid {p.Pid} did not finish within {config.Sampler.StopTimeoutS} s; killed");
                    var outcome = JobFinalizer.Finalize(dir, config, complete: false, $"sampler did not finish within {config.Sampler.StopTimeoutS} s of SIGTERM and was killed");
                    return new StopResult(outcome.Status, $"job {job.JobId}: sampler killed after {config.Sampler.StopTimeoutS} s; finalized {outcome.Status}");
                }
                if (JobFinalizer.FinalizedLine(dir) is { } last)
                    return new StopResult("stopped", $"job {job.JobId}: sampler finalized ({last})");
            }

            var o = JobFinalizer.Finalize(dir, config, complete: false, "the sampler died before the end of the job (crash or kill); data up to its last flush kept");
            return o.Status == JobFinalizer.AlreadyStatus
                ? new StopResult(o.Status, $"job {job.JobId}: already finalized by another process ({o.Reason})")
                : new StopResult(o.Status, $"job {job.JobId}: sampler was not running; finalized {o.Status} from its spool");
        }
        catch (Exception e)
        {
            Log.Error($"job {job.JobId}: stop/finalize failed: {e.Message}");
            return new StopResult("error", $"job {job.JobId}: stop/finalize failed: {e.Message}");
        }
    }
}
