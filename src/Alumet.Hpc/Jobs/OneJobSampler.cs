using System.Runtime.InteropServices;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// <c>alumet-hpc sample</c> once its arguments are valid. The full binary replaces itself (execve: same pid, so the
/// SIGTERM of whoever started it still lands) with <c>alumet-hpc-sampler sample [--detach] [--config FILE] REGISTRATION</c>,
/// which samples the job as the node daemon does, in the lean binary, and has the job's Parquet file and row, or its
/// not-measured row, written by an <c>alumet-hpc finalize-job</c> child (README Performance, peak RSS).
/// REGISTRATION is the job's <see cref="JobRegistration"/> line, the form only <see cref="Arguments"/> writes.
/// </summary>
public static class OneJobSampler
{
    public const string Verb = "sample";

    public const string Usage = "usage: alumet-hpc-sampler sample [--detach] [--config FILE] REGISTRATION (written by alumet-hpc sample; see alumet-hpc sample --help)";

    /// <summary>What <c>sample</c> registers: no raw storage, cgroup or owner; the run id fixed; the start stamped by the
    /// sampler at registration (0: <see cref="NodeSampler"/> takes the time then).</summary>
    public static JobRegistration Registration(JobIdentity job, string? gpus, string? sluid, bool exclusive) =>
        new(job, gpus, sluid, exclusive, Raw: false, StartWallNs: 0);

    /// <summary>The lean binary's argument vector (argv[0] included). Only a <c>--config</c> of the caller is passed on:
    /// the lean binary inherits the environment and the directory, so it reads <c>$ALUMET_HPC_CONFIG</c> as the caller
    /// would have (and names it in its errors).</summary>
    public static string[] Arguments(string sampler, string? configPath, bool detach, JobRegistration reg)
    {
        var args = new List<string> { sampler, Verb };
        if (detach) args.Add("--detach");
        if (configPath is { Length: > 0 }) args.AddRange(["--config", Path.GetFullPath(configPath)]);
        args.Add(reg.ToLine());
        return [.. args];
    }

    /// <summary>
    /// The registration the lean binary was given, or null with the one-sentence <paramref name="error"/>. Root runs
    /// it: every value is checked as the socket's registrations are, and the line must be exactly what
    /// <see cref="Registration"/> writes (no other key, no raw storage, cgroup or owner, a run id).
    /// </summary>
    public static JobRegistration? ParseRegistration(string line, out string? error)
    {
        var reg = JobRegistration.Parse(line, out error);
        if (reg is null) return null;
        string canonical = Registration(reg.Job, reg.Gpus, reg.Sluid, reg.Exclusive).ToLine();
        if (reg.Job.RunId.Length == 0) error = "the registration has no run id (alumet-hpc sample always writes one)";
        else if (canonical != line)
            error = line.Split(' ').FirstOrDefault(t => !canonical.Split(' ').Contains(t)) is { } token
                ? $"registration token {Schedulers.SchedulerInput.Quote(token)} is not one that alumet-hpc sample writes"
                : "the registration is not in the form alumet-hpc sample writes";
        return error is null ? reg : null;
    }

    /// <summary>
    /// Runs <c>alumet-hpc-sampler</c> (<paramref name="sampler"/>) in this process's place. Returns only when execve
    /// failed, with the reason.
    /// </summary>
    public static unsafe string Exec(string sampler, string? configPath, bool detach, JobRegistration reg)
    {
        string[] args = Arguments(sampler, configPath, detach, reg);
        var strings = new IntPtr[args.Length];
        byte** argv = stackalloc byte*[args.Length + 1];
        // Detached, it outlives its caller (a hook): like the prologs' daemon (SamplerLauncher.StartDaemon), it must not
        // keep what slurmd, OAR or a shell left open there. Given back if execve fails (the caller samples then).
        Native.InheritedDescriptors.Hidden? hidden = detach ? Native.InheritedDescriptors.Hide() : null;
        try
        {
            for (int i = 0; i < args.Length; i++) argv[i] = (byte*)(strings[i] = Marshal.StringToCoTaskMemUTF8(args[i]));
            argv[args.Length] = null;
            Native.Libc.execv(argv[0], argv);
            return $"could not run {sampler}: {new System.ComponentModel.Win32Exception(Marshal.GetLastPInvokeError()).Message}";
        }
        finally
        {
            hidden?.Dispose();
            foreach (IntPtr p in strings) Marshal.FreeCoTaskMem(p);
        }
    }

    /// <summary>
    /// The job's sampler, in either binary: loads the config, samples until SIGTERM/SIGINT/SIGHUP (or a liveness rule), then
    /// finalizes through <paramref name="finalization"/>. Exit 0 measured or not-measured (no energy source), 1 the
    /// sampler failed to start (its not-measured row says why), 2 a bad config.
    /// </summary>
    /// <param name="notice">Why this runs in the full binary (logged once the log is configured), or null.</param>
    public static int Run(string? configPath, bool detach, JobRegistration reg, Func<AlumetConfig, IJobFinalization> finalization, string? notice = null)
    {
        if (Commands.CommonOptions.LoadSystem(configPath) is not { } cfg) return 2;
        // alumet-hpc's words in either binary: the lean one is reached through alumet-hpc sample.
        if (RootOnly.RefuseStateDir("alumet-hpc: sample", cfg.Paths.StateDir, reg.Job.Scheduler,
                "a job's sampler must run as root (sudo), or measure a command as yourself with alumet-hpc exec"))
            return RootOnly.ExitCode;
        Log.Configure(cfg.Paths.LogFile, "alumet-hpc", syslog: detach, stderr: !detach);
        if (notice is not null) Log.Warn($"job {reg.Job.JobId}: {notice}");
        var job = reg.Job;
        string jobId = job.JobId;
        // The handlers, then the signals HoldEndSignals kept pending since sample's start (before Detach, which clears
        // the mask): one that came meanwhile ends the job here, with its row. Its terminal closed (SIGHUP to the
        // foreground group) ends the job as Ctrl-C does; like a second Ctrl-C it is then ignored until the finalization
        // ends (the finalize-job child blocks both: FinalizerProcess).
        using var cts = new CancellationTokenSource();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; cts.Cancel(); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; cts.Cancel(); });
        using var hup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => { c.Cancel = true; cts.Cancel(); });
        MaskEndSignals(Native.Libc.SIG_UNBLOCK);
        if (detach) SamplerProcessSetup.Detach(cfg.Paths.CgroupRoot);
        var finalizer = finalization(cfg);
        try
        {
            // Root's runs: the scheduler's state dir root's only, as the hooks make it (README, "Who sees what").
            Schedulers.HookHost.CloseSchedulerStateDir("sample", cfg.Paths.StateDir, job.Scheduler);
            Directory.CreateDirectory(job.StateDirectory(cfg.Paths.StateDir));

            using var sources = SourceFactory.Create(cfg);
            if (sources.Empty)
            {
                foreach (string p in sources.Problems) Log.Info($"job {jobId}: {p}");
                finalizer.RecordNotMeasured(job, "no energy source on this node: " + string.Join("; ", sources.Problems));
                return 0;
            }
            // Logged once the counters are read: the job's energy counts from that read, the log lines can wait.
            NodeSamplerHost.RunOneJob(cfg, sources, reg, finalizer, cts.Token, out bool finalizationFailed, BenchSpawnNs(), primed: () =>
            {
                foreach (string p in sources.Problems) Log.Info($"job {jobId}: {p}");
                Log.Info($"job {jobId}: sampling ({sources.Perimeter})");
            });
            // No row and no file (the reason is logged, the spool kept): the caller must not take the job as recorded.
            return finalizationFailed ? 1 : 0;
        }
        catch (Exception e) when (e is MissingHardwareException or IOException or UnauthorizedAccessException or ArgumentException or InvalidDataException)
        {
            string why = ErrorText.Describe(e); // our sentence, as the finalize-job child's and the command line's errors
            Log.Error($"job {jobId}: sampler failed: {why}");
            try { finalizer.RecordNotMeasured(job, $"sampler failed to start: {why}"); }
            catch (Exception inner) { Log.Error($"job {jobId}: could not record the failure: {ErrorText.Describe(inner)}"); }
            return 1;
        }
    }

    /// <summary>
    /// Keeps SIGTERM, SIGINT and SIGHUP pending, in every thread of this process, until <see cref="Run"/> has its handlers:
    /// called by <c>sample</c> first, before its checks and the execve. Until a handler is registered their action is the
    /// default one (the NativeAOT runtime installs none for them), which kills the process with no row. The mask and
    /// the pending signals survive the execve, and every thread the lean binary's runtime starts takes its first
    /// thread's mask, so <c>alumet-hpc-sampler</c> starts with them held as well. This thread is not enough: the runtime
    /// starts its finalizer thread before Main, with the caller's mask, and a process-directed signal goes to any thread
    /// that does not block it; so that thread blocks them too, in a finalizer run for the purpose. What is left is the
    /// loader's and the runtime's start before Main, ~5.5 ms from the execve (AlumetCli.Main calls this before it parses
    /// `sample`'s command line; SampleBinaryTests.ASignalBeforeTheSamplersHandlers…).
    /// </summary>
    public static void HoldEndSignals()
    {
        if (_held) return; // AlumetCli.Main holds them before the parse, SampleCommand.Run again for other callers
        _held = true;
        MaskEndSignals(Native.Libc.SIG_BLOCK);
        BlockOnFinalizerThread();
        GC.Collect(0, GCCollectionMode.Forced, blocking: true);
        GC.WaitForPendingFinalizers();
    }

    private static bool _held;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void BlockOnFinalizerThread() => _ = new FinalizerThreadMask();

    /// <summary>Garbage as soon as it is made; its finalizer runs on the runtime's finalizer thread.</summary>
    private sealed class FinalizerThreadMask
    {
        ~FinalizerThreadMask() => MaskEndSignals(Native.Libc.SIG_BLOCK);
    }

    /// <summary>SIGHUP, SIGINT, SIGTERM: the signals that end a job's sampler.</summary>
    private static void MaskEndSignals(int how) =>
        Native.Libc.MaskSignals(how, [Native.Libc.SIGHUP, Native.Libc.SIGINT, Native.Libc.SIGTERM]);

    /// <summary>The bench's spawn of the sampler (<c>ALUMET_BENCH_T0_NS</c>, bench/README.md): the origin of stats.json's
    /// start-up figures; kept across the execve, so they count the full binary's start too.</summary>
    public static long? BenchSpawnNs() =>
        long.TryParse(Environment.GetEnvironmentVariable("ALUMET_BENCH_T0_NS"), out long t) ? t : null;
}
