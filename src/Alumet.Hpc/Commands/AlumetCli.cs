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
        var root = new RootCommand("alumet-hpc: per-job energy accounting for HPC clusters (RAPL, NVML; Slurm, OAR)")
        {
            ExecCommand.Create(),
            SampleCommand.Create(),
            Schedulers.Oar.OarCommand.Create(),
        };
        return root;
    }

    public static int Main(string argv0, string[] args)
    {
        return CreateRoot().Parse(args).Invoke();
    }
}
