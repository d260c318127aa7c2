using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Outputs.Accounting;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// Where a job that the <see cref="NodeSampler"/> ended gets its Parquet file and accounting row
/// (<see cref="JobFinalizer"/>): in the sampler's own process (<see cref="InProcessFinalization"/>: <c>sample</c>,
/// <c>exec</c> as a user), or in a short-lived <c>alumet-hpc finalize-job</c> child (<see cref="FinalizerProcess"/>: the
/// node daemon), so that the Parquet writer and the SQLite/PostgreSQL clients never load into the long-lived daemon and
/// are not even in its binary (<c>alumet-hpc-sampler</c>: bench/README.md, node sampler, peak RSS).
/// </summary>
public interface IJobFinalization
{
    /// <summary>Finalizes the job in <paramref name="stateDir"/> (its spool closed and flushed); throws with the true reason.</summary>
    JobFinalizer.Outcome Finalize(string stateDir, bool complete, string reason);

    /// <summary>Retries the node's queued rows (a database that was busy or down) until <c>[database] retry_s</c>; blocks.</summary>
    void RetryQueuedRows(string what);

    /// <summary>Exports again the node's kept spools whose Parquet export failed (<see cref="JobFinalizer.RetryExports"/>); blocks.</summary>
    void RetryExports();

    /// <summary>Exports a closed day of the node's spool to its root-only Parquet file (<see cref="Spool.NodeSpool.Export"/>); returns the file; throws with the true reason.
    /// Its log line says the day's failed attempts (<see cref="Spool.NodeSpool.ExportFailedFile"/>), which it removes.</summary>
    string ExportNodeDay(string spoolDir);

    /// <summary>The row of a job that ran here unmeasured (<see cref="JobFinalizer.RecordNotMeasured"/>: <c>sample</c> with no
    /// energy source, or whose sampler failed to start); throws with the true reason.</summary>
    void RecordNotMeasured(JobIdentity job, string reason);
}

/// <summary>Finalization in this process.</summary>
public sealed class InProcessFinalization(AlumetConfig cfg) : IJobFinalization
{
    public JobFinalizer.Outcome Finalize(string stateDir, bool complete, string reason)
    {
        var outcome = JobFinalizer.Finalize(stateDir, cfg, complete, reason);
        if (outcome.Record is { } row)
            Log.Info($"job {row.JobId}: finalized {outcome.Status}{(outcome.Reason.Length > 0 ? " (" + outcome.Reason + ")" : "")}, {row.TotalEnergyJ:0.###} J, {outcome.ParquetPath}; {outcome.Delivery}");
        return outcome;
    }

    public void RetryQueuedRows(string what) => Outbox.RetryInBackground(cfg, what);

    public void RetryExports() => JobFinalizer.RetryExports(cfg);

    public string ExportNodeDay(string spoolDir)
    {
        string file = Spool.NodeSpool.Export(cfg, spoolDir, out int failed);
        Log.Info($"node file {file}: written from {spoolDir}{(failed > 0 ? $" after {failed} failed attempt(s)" : "")}");
        return file;
    }

    public void RecordNotMeasured(JobIdentity job, string reason) => JobFinalizer.RecordNotMeasured(job, cfg, reason);
}

/// <summary>
/// Finalization in a child <c>alumet-hpc finalize-job</c> (the full binary, beside the sampler's), waited for: the same
/// <see cref="JobFinalizer"/> under the same per-job lock, so every guarantee (exactly one row, state removed only after
/// success, the reason of a failure kept for the next attempt) is the in-process one. The child logs the outcome; a
/// failure comes back as the exception the in-process call would have thrown, logged once by the sampler.
/// </summary>
/// <param name="executable">The full <c>alumet-hpc</c>; never a path a user could plant (the sampler's own directory).</param>
/// <param name="configPath">The config the daemon loaded (absolute), or null for the same default lookup.</param>
/// <param name="logToStderr">The sampler echoes its log to stderr (<c>sample</c> in the foreground): the child's log lines
/// (the job's outcome) come to the same stderr, as they did when <c>sample</c> finalized in its own process.</param>
public sealed class FinalizerProcess(string executable, string? configPath, bool logToStderr = false) : IJobFinalization
{
    /// <summary>The full binary's name: the daemon runs the one in its own directory.</summary>
    public const string Program = "alumet-hpc";

    public const string Command = "finalize-job";

    /// <summary>The child logs to its stderr, not to syslog (<paramref name="logToStderr"/>); the sampler copies it to its own.</summary>
    public const string LogToStderrOption = "--log-stderr";

    public string Executable => executable;

    /// <summary>The <c>alumet-hpc</c> in this binary's directory, told the config file this process loaded
    /// (<see cref="SamplerLauncher.ConfigForChild"/>: the child runs in "/"), or null for the default lookup.</summary>
    public static FinalizerProcess BesideThisBinary(string? configPath, bool logToStderr = false) =>
        new(Path.Combine(AppContext.BaseDirectory, Program), SamplerLauncher.ConfigForChild(configPath), logToStderr);

    public JobFinalizer.Outcome Finalize(string stateDir, bool complete, string reason)
    {
        // The reason goes on the child's stdin, not its command line: any user can read /proc/PID/cmdline, and a
        // co-tenant's reason ("the sampler died ...") is not theirs to see.
        var answer = Run(["--state-dir", stateDir, "--complete", complete ? "true" : "false"], $"finalization of {stateDir}", reason);
        if (answer.Error is { } error) throw new IOException(error);
        return new JobFinalizer.Outcome(answer.Status, answer.Reason, answer.ParquetPath, null, answer.Stored, answer.Delivery);
    }

    public void RetryQueuedRows(string what)
    {
        var answer = Run(["--retry-queued-rows", what], "retry of the queued rows", "");
        if (answer.Error is { } error) Log.Warn($"{what}: {error}");
    }

    public void RetryExports()
    {
        var answer = Run([RetryExportsOption], "retry of the kept spools' exports", "");
        if (answer.Error is { } error) Log.Warn($"kept spools: {error}");
    }

    /// <summary>The child's option for <see cref="RetryExports"/>.</summary>
    public const string RetryExportsOption = "--retry-exports";

    public string ExportNodeDay(string spoolDir)
    {
        var answer = Run(["--node-day", spoolDir], $"export of the node file of {spoolDir}", "");
        return answer.Error is { } error ? throw new IOException(error) : answer.ParquetPath;
    }

    public void RecordNotMeasured(JobIdentity job, string reason)
    {
        // The job as a registration line (validated by the child, which runs as root); the reason on stdin, as above.
        var answer = Run(["--not-measured", NotMeasuredLine(job)], $"not-measured row of job {job.JobId}", reason);
        if (answer.Error is { } error) throw new IOException(error);
    }

    /// <summary>
    /// Starts the child with SIGHUP, SIGINT and SIGQUIT blocked. A terminal sends them (hangup, Ctrl-C, Ctrl-\) to its
    /// whole foreground process group, so to this child too while a foreground <c>sample</c> waits for it: a second
    /// Ctrl-C would kill it and lose the job's row and file (the sampler itself ignores it while it finalizes). Blocked
    /// on this thread around the fork, they stay blocked in the child from its first instruction (the forked child
    /// restores this mask before execve and the runtime keeps an inherited mask), pending until it exits; SIGTERM and
    /// SIGKILL still end it. Not ignored instead: the fork resets this process's handled signals to the default action.
    /// </summary>
    private static unsafe System.Diagnostics.Process? StartWithTerminalSignalsBlocked(ProcessStartInfo psi)
    {
        byte* old = stackalloc byte[Native.Libc.SigsetBytes];
        bool blocked = Native.Libc.MaskSignals(Native.Libc.SIG_BLOCK, [Native.Libc.SIGHUP, Native.Libc.SIGINT, Native.Libc.SIGQUIT], old) == 0;
        try { return System.Diagnostics.Process.Start(psi); }
        finally { if (blocked) Native.Libc.sigprocmask(Native.Libc.SIG_SETMASK, old, null); }
    }

    private static string NotMeasuredLine(JobIdentity job) => OneJobSampler.Registration(job, null, null, exclusive: false).ToLine();

    private FinalizerAnswer Run(IEnumerable<string> args, string what, string stdin)
    {
        var psi = new ProcessStartInfo(executable)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = "/",
        };
        psi.ArgumentList.Add(Command);
        if (logToStderr) psi.ArgumentList.Add(LogToStderrOption);
        if (configPath is not null)
        {
            psi.ArgumentList.Add("--config");
            psi.ArgumentList.Add(configPath);
        }
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var child = StartWithTerminalSignalsBlocked(psi) ?? throw new IOException($"could not start {executable} for the {what}");
        try { child.StandardInput.Write(stdin); }
        catch (IOException) { } // a child that died at start: its exit status says why, below
        finally { try { child.StandardInput.Close(); } catch (IOException) { } }
        var stderr = child.StandardError.ReadToEndAsync();
        string stdout = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        string err = stderr.GetAwaiter().GetResult();
        string said = ErrorText.LastLine(err);
        string? last = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        FinalizerAnswer? answer = null;
        try { answer = last is null ? null : JsonSerializer.Deserialize(last, FinalizerJsonContext.Default.FinalizerAnswer); }
        catch (JsonException) { }
        // An answering child's stderr is its log lines; without an answer, its last line is in the error, logged once by the sampler.
        if (logToStderr && answer is not null) Console.Error.Write(err);
        return answer ?? throw new IOException(
            $"{executable} {Command} (pid {child.Id}) gave no answer for the {what}: exit status {child.ExitCode}{(said.Length > 0 ? $": {said}" : "")}");
    }

    /// <summary>
    /// The child's side (<c>alumet-hpc finalize-job</c>): finalizes a job (or exports a closed day of the node's spool) in
    /// its own process and prints the answer as one JSON line. Exit 0 with the outcome, 1 with the error (logged by the sampler, not here: once).
    /// </summary>
    public static int Serve(AlumetConfig cfg, string? stateDir, bool complete, string reason, string? retryWhat, string? nodeDay, string? notMeasured = null,
        bool retryExports = false)
    {
        var local = new InProcessFinalization(cfg);
        FinalizerAnswer answer;
        try
        {
            if (notMeasured is not null)
            {
                var reg = JobRegistration.Parse(notMeasured, out string? error) ?? throw new ArgumentException($"--not-measured: {error}");
                local.RecordNotMeasured(reg.Job, reason);
                answer = new FinalizerAnswer("", "", "", true, "", null);
            }
            else if (nodeDay is not null)
            {
                answer = new FinalizerAnswer("", "", local.ExportNodeDay(nodeDay), true, "", null);
            }
            else if (retryExports)
            {
                local.RetryExports();
                answer = new FinalizerAnswer("", "", "", true, "", null);
            }
            else if (retryWhat is not null)
            {
                local.RetryQueuedRows(retryWhat);
                answer = new FinalizerAnswer("", "", "", true, "", null);
            }
            else
            {
                if (stateDir is null) throw new ArgumentException("finalize-job needs --state-dir or --retry-queued-rows");
                var o = local.Finalize(stateDir, complete, reason);
                answer = new FinalizerAnswer(o.Status, o.Reason, o.ParquetPath, o.Stored, o.Delivery, null);
            }
        }
        catch (Exception e)
        {
            answer = new FinalizerAnswer("", "", "", false, "", ErrorText.Describe(e));
        }
        Console.Out.WriteLine(JsonSerializer.Serialize(answer, FinalizerJsonContext.Default.FinalizerAnswer));
        Console.Out.Flush();
        return answer.Error is null ? 0 : 1;
    }
}

/// <summary>What <c>finalize-job</c> prints: the <see cref="JobFinalizer.Outcome"/> without its row, or the error.</summary>
public sealed record FinalizerAnswer(string Status, string Reason, string ParquetPath, bool Stored, string Delivery, string? Error);

[JsonSerializable(typeof(FinalizerAnswer))]
[JsonSerializable(typeof(JobFinalizer.PendingExport))]
internal sealed partial class FinalizerJsonContext : JsonSerializerContext;
