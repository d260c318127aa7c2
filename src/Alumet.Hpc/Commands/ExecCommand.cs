using System.CommandLine;
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Alumet.Hpc.Attribution;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Commands;

/// <summary>
/// <c>alumet-hpc exec [options] -- CMD ARGS...</c>: measure one command without a scheduler; the command runs as a
/// child with our stdio; at its exit the job is finalized, the report printed (to stderr, so the command's stdout
/// stays clean for pipes) and the command's exit code returned.
/// <para>As root, the command is a job of the node sampler like a scheduler's job (README "exec"): exec creates its
/// own cgroup (<see cref="ExecCgroup"/>), registers the job with the node sampler (starting one through the prolog's
/// start gate when none runs), starts the command inside the cgroup, and ends the job as an epilog does. As any other
/// user (who may not talk to the root-only socket nor create cgroups) the sampler runs in this process, as one
/// exclusive job recorded in the user's own files.</para>
/// </summary>
public static class ExecCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var jobId = new Option<string?>("--job-id") { Description = "job id to record (default: the next id of this node's exec counter)" };
        var storage = new Option<int?>("--storage-period-ms") { Description = "override [sampler] storage_period_ms (0 = raw); as root only 0, raw storage for this command: the node sampler's period is the node's" };
        var raplHz = new Option<double?>("--rapl-hz") { Description = "override [sampler] rapl_hz; not as root: the node sampler's rate is shared by the node's jobs (alumet-hpc ctl set)" };
        var noReport = new Option<bool>("--no-report") { Description = "do not print the report at the end" };
        var command = new Argument<string[]>("command") { Description = "the command and its arguments, after --", Arity = ArgumentArity.OneOrMore };

        var cmd = new Command("exec", "Measure the energy of one command: run it, sample until it exits, write Parquet and the accounting row, print the report")
        {
            config, jobId, storage, raplHz, noReport, command,
        };
        cmd.SetAction(r => Run(r.GetValue(config), r.GetValue(jobId), r.GetValue(storage), r.GetValue(raplHz), r.GetValue(noReport), r.GetValue(command)!));
        return cmd;
    }

    /// <param name="samplerExecutable">The alumet-hpc binary that a node sampler is started from (tests run this in-process).</param>
    public static int Run(string? configPath, string? jobId, int? storagePeriodMs, double? raplHz, bool noReport, string[] command,
                          TextWriter? reportOut = null, string? samplerExecutable = null)
    {
        reportOut ??= Console.Error;
        bool root = Native.Libc.getuid() == 0;
        AlumetConfig cfg;
        try
        {
            cfg = ConfigLoader.Load(configPath).Config;
            if (root && (raplHz is not null || storagePeriodMs is > 0))
            {
                // The node sampler's rates are the node's, shared by every job on it: only raw storage is asked per job.
                Console.Error.WriteLine($"alumet-hpc: exec: {(raplHz is not null ? "--rapl-hz" : "--storage-period-ms")} sets the node sampler's rate, which every job on the node shares; use `alumet-hpc ctl set {(raplHz is not null ? "rapl_hz" : "storage_period_ms")}=VALUE` or [sampler] in the config (per command, only --storage-period-ms 0, raw storage, can be asked)");
                return 2;
            }
            if (!root && storagePeriodMs is { } sp) cfg.Sampler.StoragePeriodMs = sp;
            if (!root && raplHz is { } hz) cfg.Sampler.RaplHz = hz;
            ConfigLoader.Validate(cfg, "command line");
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"alumet-hpc: {e.Message}");
            return 2;
        }
        if (jobId is not null && !Schedulers.SchedulerInput.IsJobId(jobId))
        {
            Console.Error.WriteLine($"alumet-hpc: exec: --job-id '{jobId}' is not a numeric job id");
            return 2;
        }
        // Before anything is measured or recorded: a command that cannot run gets no job id, no row, no Parquet.
        var program = CommandPath.Resolve(command[0], Environment.GetEnvironmentVariable("PATH"));
        if (program.Path is null)
        {
            Console.Error.WriteLine($"alumet-hpc: exec: {program.Problem} (nothing was measured)");
            return program.ExitCode;
        }
        if (RootOnly.StateDirRefused(cfg.Paths.StateDir) is { } refused) // root's only: a user's exec uses their own
        {
            Console.Error.WriteLine($"alumet-hpc: exec: {refused}; nothing measured");
            return 2;
        }
        Log.Configure(cfg.Paths.LogFile, "alumet-hpc", syslog: false, stderr: false);
        // <state_dir>/exec (root's exec jobs' ids, state and .finalized markers): root's only, as a scheduler's. A user's
        // exec keeps its state under its own per-user state_dir (ConfigLoader), so nobody else needs to list it.
        if (root) Schedulers.HookHost.CloseSchedulerStateDir("exec", cfg.Paths.StateDir, Schedulers.SchedulerNames.Exec);

        string user = Environment.UserName;
        int uid = (int)Native.Libc.getuid();
        JobIdentity job;
        try
        {
            job = new JobIdentity(Schedulers.SchedulerNames.Exec, ClusterName(cfg), jobId ?? ExecJobIds.Next(cfg.Paths.StateDir), user, uid, Environment.MachineName)
            {
                JobName = JobIdentity.RecordedName(Path.GetFileName(command[0])), // the command, as sbatch names a job by its script
            };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine(StateDirError(cfg, e));
            return 2;
        }

        SourceSet sources;
        try { sources = SourceFactory.Create(cfg); }
        catch (MissingHardwareException e)
        {
            Console.Error.WriteLine($"alumet-hpc: exec: {e.Message}");
            return 2;
        }
        if (sources.Empty)
        {
            Console.Error.WriteLine($"alumet-hpc: exec: no energy source: {string.Join("; ", sources.Problems)}; enable [sources] estimate");
            return 2;
        }
        if (sources.EstimateModel.Length > 0)
            foreach (string problem in sources.Problems)
                Console.Error.WriteLine($"alumet-hpc: note: {problem}"); // why we fell back to an estimate

        try { Directory.CreateDirectory(job.StateDirectory(cfg.Paths.StateDir)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            sources.Dispose();
            Console.Error.WriteLine(StateDirError(cfg, e));
            return 2;
        }
        if (root)
        {
            sources.Dispose(); // checked here for the error above; the node sampler opens its own
            return RunAsNodeJob(cfg, configPath, job, idPicked: jobId is null, program.Path, command, storagePeriodMs == 0, noReport, reportOut, samplerExecutable);
        }
        using var _ = sources;
        using var cts = new CancellationTokenSource();
        JobFinalizer.Outcome? outcome = null;
        var reg = new JobRegistration(job, null, null, Exclusive: true, Raw: false, Clock.WallNs());
        var sampler = new Thread(() => outcome = NodeSamplerHost.RunOneJob(cfg, sources, reg, new InProcessFinalization(cfg), cts.Token, out bool _)) { Name = "sampler" };
        sampler.Start();

        int exitCode = RunCommand(program.Path, command, null);
        cts.Cancel();
        sampler.Join();

        if (outcome is null)
        {
            Console.Error.WriteLine($"alumet-hpc: exec: the measurement could not be finalized; see {cfg.Paths.LogFile}");
        }
        else if (!noReport)
        {
            ExecReport.Print(reportOut, cfg, outcome);
        }
        return exitCode;
    }

    /// <summary>
    /// Root: the command as a job of the node sampler, in its own cgroup, registered and ended as a prolog and an epilog
    /// do (so a sampler that dies mid-command gives a partial row with the reason, finalized here from the spool).
    /// </summary>
    /// <param name="idPicked">The id is the node's exec counter's (no --job-id): one whose cgroup is in use is skipped.</param>
    private static int RunAsNodeJob(AlumetConfig cfg, string? configPath, JobIdentity job, bool idPicked, string program, string[] command, bool raw,
                                    bool noReport, TextWriter reportOut, string? samplerExecutable)
    {
        var cgroup = ExecCgroup.Create(cfg.Paths.CgroupRoot, job.JobId, out string? cgroupProblem, out bool inUse);
        // The cgroup is the node's, the counter this state_dir's: another installation's exec (its own counter counts from 1
        // too), or a command a killed exec left running, can hold the id's cgroup. The user gave no id: take the next one.
        for (int skipped = 0; inUse && idPicked && skipped < MaxIdsSkipped; skipped++)
        {
            string skippedDir = job.StateDirectory(cfg.Paths.StateDir);
            try
            {
                job = job with { JobId = ExecJobIds.Next(cfg.Paths.StateDir) };
                Directory.CreateDirectory(job.StateDirectory(cfg.Paths.StateDir));
                Directory.Delete(skippedDir); // empty: made by Run for this id, nothing in it
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine(StateDirError(cfg, e));
                return 2;
            }
            cgroup = ExecCgroup.Create(cfg.Paths.CgroupRoot, job.JobId, out cgroupProblem, out inUse);
        }
        if (inUse)
        {
            // Another exec with this --job-id is running: one job id, one command (its registration would be taken for ours).
            Console.Error.WriteLine(idPicked
                ? $"alumet-hpc: exec: {cgroupProblem}, as were the {MaxIdsSkipped} ids before it that this node's exec counter gave; give a --job-id (nothing was measured)"
                : $"alumet-hpc: exec: {cgroupProblem}; give another --job-id (nothing was measured)");
            return 2;
        }
        if (cgroup is null)
        {
            // No cgroup, no CPU time of its own: the node's split cannot give the command its share; it is charged the node.
            Console.Error.WriteLine($"alumet-hpc: exec: note: {cgroupProblem}; the whole node is charged to the command");
            Log.Warn($"job {job.JobId}: {cgroupProblem}; exec charged the whole node");
        }
        var launch = new SamplerLaunch(job, configPath, [], null, Exclusive: cgroup is null, Raw: raw)
        {
            Cgroup = cgroup?.Directory, Owner = SamplerPid.Self(), ExclusiveWhenAlone = cgroup is not null,
        };
        var registered = SamplerLauncher.Start(launch, cfg, samplerExecutable);
        if (!registered.Ok)
        {
            if (cgroup is not null) ExecCgroup.Remove(cgroup.Directory);
            Console.Error.WriteLine($"alumet-hpc: exec: {registered.Message} (the command was not run)");
            Log.Error($"job {job.JobId}: {registered.Message}");
            return 2;
        }
        Log.Info($"job {job.JobId}: {registered.Message}");
        string parquet = "";
        try { parquet = Outputs.Parquet.ParquetDataset.JobFile(cfg.Paths, Spool.SpoolWriter.ReadMeta(job.StateDirectory(cfg.Paths.StateDir))); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Text.Json.JsonException or InvalidDataException) { }

        int exitCode = RunCommand(program, command, cgroup);
        var end = SamplerLauncher.StopAndFinalize(job, cfg);
        if (end.Status != "error") Log.Info(end.Message); // an error was logged once, where it happened
        if (cgroup is not null && ExecCgroup.Remove(cgroup.Directory) is { } left)
        {
            Console.Error.WriteLine($"alumet-hpc: exec: note: {left}");
            Log.Warn($"job {job.JobId}: {left}");
        }
        if (end.Status == "error")
            Console.Error.WriteLine($"alumet-hpc: exec: the measurement could not be finalized ({end.Message}); see {cfg.Paths.LogFile}");
        else
        {
            // Said when it was not the sampler's normal end (it died: partial, finalized here from the spool).
            if (end.Status != "stopped") reportOut.WriteLine($"alumet-hpc: exec: {end.Message}");
            if (!noReport) ExecReport.Print(reportOut, cfg, job.JobId, job.Cluster, parquet);
        }
        return exitCode;
    }

    /// <summary>One process moves between cgroups at a time: the command is started while this process is in its cgroup.</summary>
    private static readonly Lock CgroupMove = new();

    /// <summary>Runs the command (in <paramref name="cgroup"/> when given) with our stdio until it exits; its exit code.</summary>
    private static int RunCommand(string program, string[] command, ExecCgroup? cgroup)
    {
        Process? child = null;
        // Ctrl-C reaches the whole foreground group: the command handles it; we keep measuring until it exits.
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => c.Cancel = true);
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            try { if (child is { HasExited: false }) Native.Libc.kill(child.Id, 15); } catch (InvalidOperationException) { }
        });
        try
        {
            var psi = new ProcessStartInfo(program) { UseShellExecute = false };
            foreach (string a in command.Skip(1)) psi.ArgumentList.Add(a);
            lock (CgroupMove)
            {
                // The command is forked while we are in its cgroup, so it (and all it starts) is in it before it runs;
                // we leave at once: what exec itself uses from then on is never the command's.
                string? original = cgroup?.Current();
                try
                {
                    cgroup?.Enter();
                    child = Process.Start(psi)!;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    Console.Error.WriteLine($"alumet-hpc: exec: note: cannot enter {cgroup!.Directory} ({e.Message}); the command runs outside it and gets no share of a shared node");
                    child = Process.Start(psi)!;
                }
                finally { cgroup?.Leave(original); }
            }
            child.WaitForExit();
            return child.ExitCode;
        }
        catch (Win32Exception e)
        {
            // Found and executable, yet execve refused it (e.g. a script without #! line): measured as a job that ran nothing.
            Console.Error.WriteLine($"alumet-hpc: exec: cannot run '{command[0]}': {e.Message}");
            return 126;
        }
    }

    /// <summary>How many ids of the exec counter whose cgroup is in use one exec skips before it gives up.</summary>
    private const int MaxIdsSkipped = 100;

    private static string StateDirError(AlumetConfig cfg, Exception e) =>
        $"alumet-hpc: exec: cannot write the job's state under {cfg.Paths.StateDir}: {e.Message}; set [paths] state_dir to a writable directory";

    internal static string ClusterName(AlumetConfig cfg) =>
        cfg.Cluster.Name.Length > 0 ? cfg.Cluster.Name : Environment.GetEnvironmentVariable("SLURM_CLUSTER_NAME") is { Length: > 0 } c && Schedulers.SchedulerInput.IsName(c) ? c : "local";
}
