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
            report,
            DbCommand.Create(),
            Schedulers.Slurm.SlurmCommand.Create(),
            Schedulers.Oar.OarCommand.Create(),
        };
        return root;
    }

    public static int Main(string argv0, string[] args)
    {
        if (Path.GetFileName(argv0) == Report.ReportCommand.Name) return ReportEntry.Run(args);
        if (args.Length == 0 && Schedulers.Slurm.SlurmCommand.RunBare() is int hookExit) return hookExit;
        if (args.Length > 0 && args[0] == "report") return ReportEntry.Run(args[1..]);
        return CreateRoot().Parse(args).Invoke();
    }
}
