using System.CommandLine;
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Commands;

/// <summary>
/// <c>alumet-hpc exec [options] -- CMD ARGS...</c>: measure one command without a scheduler. The sampler runs
/// in this process while the command runs as a child with our stdio; at its exit the job is finalized, the
/// report printed (to stderr, so the command's stdout stays clean for pipes) and the command's exit code returned.
/// </summary>
public static class ExecCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var jobId = new Option<string?>("--job-id") { Description = "job id to record (default: the next id of this node's exec counter)" };
        var storage = new Option<int?>("--storage-period-ms") { Description = "override [sampler] storage_period_ms (0 = raw)" };
        var raplHz = new Option<double?>("--rapl-hz") { Description = "override [sampler] rapl_hz" };
        var noReport = new Option<bool>("--no-report") { Description = "do not print the report at the end" };
        var command = new Argument<string[]>("command") { Description = "the command and its arguments, after --", Arity = ArgumentArity.OneOrMore };

        var cmd = new Command("exec", "Measure the energy of one command: run it, sample until it exits, write Parquet and the accounting row, print the report")
        {
            config, jobId, storage, raplHz, noReport, command,
        };
        cmd.SetAction(r => Run(r.GetValue(config), r.GetValue(jobId), r.GetValue(storage), r.GetValue(raplHz), r.GetValue(noReport), r.GetValue(command)!));
        return cmd;
    }

    public static int Run(string? configPath, string? jobId, int? storagePeriodMs, double? raplHz, bool noReport, string[] command,
                          TextWriter? reportOut = null)
    {
        reportOut ??= Console.Error;
        AlumetConfig cfg;
        try
        {
            cfg = ConfigLoader.Load(configPath).Config;
            if (storagePeriodMs is { } sp) cfg.Sampler.StoragePeriodMs = sp;
            if (raplHz is { } hz) cfg.Sampler.RaplHz = hz;
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
        Log.Configure(cfg.Paths.LogFile, "alumet-hpc", syslog: false, stderr: false);

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
        using var _ = sources;
        using var cts = new CancellationTokenSource();
        JobFinalizer.Outcome? outcome = null;
        var reg = new JobRegistration(job, null, null, Exclusive: true, Raw: false, Clock.WallNs());
        var sampler = new Thread(() => outcome = NodeSamplerHost.RunOneJob(cfg, sources, reg, cts.Token)) { Name = "sampler" };
        sampler.Start();

        int exitCode;
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
            var psi = new ProcessStartInfo(program.Path) { UseShellExecute = false };
            foreach (string a in command.Skip(1)) psi.ArgumentList.Add(a);
            child = Process.Start(psi)!;
            child.WaitForExit();
            exitCode = child.ExitCode;
        }
        catch (Win32Exception e)
        {
            // Found and executable, yet execve refused it (e.g. a script without #! line): measured as a job that ran nothing.
            Console.Error.WriteLine($"alumet-hpc: exec: cannot run '{command[0]}': {e.Message}");
            exitCode = 126;
        }
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

    private static string StateDirError(AlumetConfig cfg, Exception e) =>
        $"alumet-hpc: exec: cannot write the job's state under {cfg.Paths.StateDir}: {e.Message}; set [paths] state_dir to a writable directory";

    internal static string ClusterName(AlumetConfig cfg) =>
        cfg.Cluster.Name.Length > 0 ? cfg.Cluster.Name : Environment.GetEnvironmentVariable("SLURM_CLUSTER_NAME") is { Length: > 0 } c && Schedulers.SchedulerInput.IsName(c) ? c : "local";
}
