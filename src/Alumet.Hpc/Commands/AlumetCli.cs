using System.CommandLine;

namespace Alumet.Hpc.Commands;

/// <summary>
/// The command line of the one binary. <c>alumet-report</c> is the same binary under another name (a symlink),
/// and a bare run with <c>SLURM_SCRIPT_CONTEXT</c> set is a Slurm Prolog/Epilog (Slurm passes no argv).
/// </summary>
public static class AlumetCli
{
    public static RootCommand CreateRoot()
    {
        var report = new Command("report", "Same as alumet-report: sacct-like energy report (alumet-hpc report --help)")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        report.SetAction(r => ReportEntry.Run(r.UnmatchedTokens.ToArray()));
        var root = new RootCommand("alumet-hpc: per-job energy accounting for HPC clusters (RAPL, NVML; Slurm, OAR)")
        {
            ExecCommand.Create(),
            SampleCommand.Create(),
            NodeSamplerCommand.Create(),
            FinalizeJobCommand.Create(),
            CtlCommand.Create(),
            CalibrateCommand.Create(),
            report,
            DbCommand.Create(),
            Schedulers.Slurm.SlurmCommand.Create(),
            Schedulers.Oar.OarCommand.Create(),
            ParquetCommand.Create(),
        };
        return root;
    }

    /// <summary>
    /// Entry point. Whatever escapes a command becomes one line on stderr and exit code 1 (never a stack trace):
    /// hooks catch everything themselves (they always exit 0), the rest lands here.
    /// </summary>
    public static int Main(string argv0, string[] args)
    {
        string name = Path.GetFileName(argv0) == Report.ReportCommand.Name ? Report.ReportCommand.Name : "alumet-hpc";
        // `sample`'s end signals are held from here, not from its handler: the command line's construction and parse
        // (~0.7 ms) would otherwise still be a time in which a SIGTERM kills the job's sampler with no row
        // (OneJobSampler.HoldEndSignals).
        if (args.Length > 0 && args[0] == "sample") Jobs.OneJobSampler.HoldEndSignals();
        // A sampler under a tiny descriptor limit: one sentence before anything needs a descriptor (DescriptorLimit).
        if (args.Length > 0 && args[0] is ("sample" or "node-sampler") && !Jobs.DescriptorLimit.Ensure(name)) return Jobs.DescriptorLimit.ExitCode;
        try
        {
            bool report = name == Report.ReportCommand.Name || (args.Length > 0 && args[0] == "report");
            KeepGroupOnlyForTheReport(report);
            if (name == Report.ReportCommand.Name) return ReportEntry.Run(args);
            if (args.Length == 0 && Schedulers.Slurm.SlurmCommand.RunBare() is int hookExit) return hookExit;
            if (args.Length > 0 && args[0] == "report") return ReportEntry.Run(args[1..]);
            var parsed = CreateRoot().Parse(args);
            if (parsed.Errors.Count > 0)
            {
                // One sentence and exit 2, as alumet-report answers (ReportCommand.Run): the parser's own answer was its
                // whole help page and exit 1, the code of a run that failed.
                Console.Error.WriteLine($"{name}: error: {UsageError(parsed)}");
                return 2;
            }
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            string line = $"{name}: error: {Core.ErrorText.Describe(e)}";
            try { Console.Error.WriteLine(line); }
            catch (IOException) { Jobs.DescriptorLimit.Say(line); } // no descriptor left for Console's own
            return 1;
        }
    }

    /// <summary>
    /// The parse's first error on one line ("Did you mean" suggestions joined to it), an unknown word before a missing
    /// command (what was typed explains the rest), and where the options are listed.
    /// </summary>
    private static string UsageError(ParseResult parsed)
    {
        var error = parsed.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parsed.Errors[0];
        string text = string.Join(' ', error.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).TrimEnd('.');
        string help = parsed.CommandResult.Command is RootCommand ? "alumet-hpc --help" : $"alumet-hpc {CommandPath(parsed.CommandResult)} --help";
        return $"{text}; `{help}` lists the options";
    }

    private static string CommandPath(System.CommandLine.Parsing.CommandResult result) =>
        result.Parent is System.CommandLine.Parsing.CommandResult parent && parent.Command is not RootCommand
            ? $"{CommandPath(parent)} {result.Command.Name}" : result.Command.Name;

    /// <summary>
    /// The gate's group (setgid alumet-report) is for the report alone: every other command gives it up first. So does
    /// the report when this binary is itself set-id, because then the runtime has read the caller's environment.
    /// </summary>
    private static void KeepGroupOnlyForTheReport(bool report)
    {
        if (!Report.ReportPrivilege.Held) return;
        if (report && !Report.ReportPrivilege.OwnBinaryIsSetId()) return;
        Report.ReportPrivilege.Drop();
        if (report)
            Console.Error.WriteLine($"{Report.ReportCommand.Name}: note: alumet-hpc itself is set-id, so its group was given up; install the alumet-report gate instead (README, Install)");
    }
}
