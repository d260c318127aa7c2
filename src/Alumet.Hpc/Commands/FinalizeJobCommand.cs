using System.CommandLine;
using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Commands;

/// <summary>
/// <c>alumet-hpc finalize-job</c> (hidden): what the node sampler runs for each job it ended, so that the Parquet writer
/// and the database clients live in a short process, not in the daemon (<see cref="FinalizerProcess"/>). Prints one JSON
/// answer line; the reason of a partial row is read from stdin; exit 0 finalized (or already), 1 failed (the error is in the answer), 2 a bad config.
/// </summary>
public static class FinalizeJobCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var stateDir = new Option<string?>("--state-dir") { Description = "the job's state directory (its spool closed by the node sampler)" };
        var complete = new Option<bool>("--complete") { Description = "the job ended normally (else its row is partial)" };
        var retry = new Option<string?>("--retry-queued-rows") { Description = "retry the node's queued rows until [database] retry_s; the value names them in the log" };
        var nodeDay = new Option<string?>("--node-day") { Description = "export this closed day of the node's spool to the node's root-only Parquet file" };
        var retryExports = new Option<bool>(FinalizerProcess.RetryExportsOption) { Description = "export again the node's kept spools whose Parquet export failed" };
        var notMeasured = new Option<string?>("--not-measured") { Description = "write the not-measured row of this job (a registration line; the reason on stdin)" };
        var logToStderr = new Option<bool>(FinalizerProcess.LogToStderrOption) { Description = "log to stderr, not syslog (for a sample in the foreground, which shows it)" };
        var cmd = new Command(FinalizerProcess.Command, "Finalize one job ended by the node sampler (run by the node sampler)")
        {
            config, stateDir, complete, retry, retryExports, nodeDay, notMeasured, logToStderr,
        };
        cmd.Hidden = true;
        cmd.SetAction(r =>
        {
            if (CommonOptions.LoadSystem(r.GetValue(config)) is not { } cfg) return 2;
            bool foreground = r.GetValue(logToStderr);
            Core.Log.Configure(cfg.Paths.LogFile, "alumet-hpc", syslog: !foreground, stderr: foreground);
            // Why the row is partial comes on stdin (never on the command line, which every user can read in /proc).
            string reason = r.GetValue(stateDir) is null && r.GetValue(notMeasured) is null ? "" : Console.In.ReadToEnd();
            return FinalizerProcess.Serve(cfg, r.GetValue(stateDir), r.GetValue(complete), reason, r.GetValue(retry), r.GetValue(nodeDay), r.GetValue(notMeasured),
                r.GetValue(retryExports));
        });
        return cmd;
    }
}
