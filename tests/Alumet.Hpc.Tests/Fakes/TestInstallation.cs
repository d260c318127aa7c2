using Alumet.Hpc.Config;

namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// A complete throw-away installation: generated powercap tree, state/data/DB/log under one temp dir, and a
/// config file pointing at them (passed to the binary with --config).
/// </summary>
public sealed class TestInstallation : TempTree
{
    public PowercapTree Powercap { get; }
    public string ConfigPath { get; }
    public AlumetConfig Config { get; }

    /// <param name="pathsToml">Extra [paths] keys. The msr, CPU topology, cpuinfo and perf roots default to empty
    /// directories here, so the machine's own /dev/cpu or power PMU never joins a test.</param>
    /// <param name="extraToml">More sections appended to the file (e.g. [bmc]).</param>
    public TestInstallation(PowercapTree powercap, string samplerToml = "", string sourcesToml = "rapl = \"on\"\nestimate = \"off\"\nnvml = \"off\"",
                            string pathsToml = "", string extraToml = "")
        : base("install")
    {
        foreach (var (key, dir) in new[] { ("msr_root", "no-msr"), ("cpu_root", "no-cpu"), ("cpuinfo", "no-cpuinfo"), ("perf_pmu_root", "no-perf") })
            if (!pathsToml.Contains(key + " ", StringComparison.Ordinal)) pathsToml += $"\n{key} = \"{PathOf(dir)}\"";
        Powercap = powercap;
        ConfigPath = Write("alumet.toml", $"""
            [sampler]
            {samplerToml}

            [sources]
            {sourcesToml}

            [paths]
            powercap_root = "{powercap.Root}"
            state_dir = "{PathOf("state")}"
            data_dir = "{PathOf("data")}"
            database = "{PathOf("accounting.db")}"
            log_file = "{PathOf("alumet-hpc.log")}"
            {pathsToml}

            {extraToml}
            """);
        Config = ConfigLoader.LoadFile(ConfigPath);
    }

    /// <summary>
    /// Ends every process still running with this installation's config (a detached sampler that a failed assertion
    /// never stopped): left alone it samples at 1 kHz and SCHED_FIFO until its maximum lifetime and slows every later
    /// test on the machine.
    /// </summary>
    public override void Dispose()
    {
        KillProcessesUsing(ConfigPath);
        Powercap.Dispose();
        base.Dispose();
    }

    private static void KillProcessesUsing(string configPath)
    {
        foreach (int pid in ProcessesUsing(configPath))
        {
            try { System.Diagnostics.Process.GetProcessById(pid).Kill(); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) { }
        }
    }

    /// <summary>Processes other than this one with this installation's config on their command line: a node sampler
    /// started by a prolog or exec, its finalize-job children (a closed day's export after its exit included).</summary>
    public IEnumerable<int> Processes() => ProcessesUsing(ConfigPath);

    private static IEnumerable<int> ProcessesUsing(string configPath)
    {
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid) || pid == Environment.ProcessId) continue;
            string cmdline;
            try { cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")); }
            catch (IOException) { continue; }
            catch (UnauthorizedAccessException) { continue; }
            if (cmdline.Split('\0').Contains(configPath)) yield return pid;
        }
    }

    /// <summary>
    /// The bare binary as slurmd runs the Prolog or Epilog (<paramref name="context"/> "prolog_slurmd" or "epilog_slurmd"):
    /// no argv, the job (user root, node node1, cluster test) and this installation's config in the environment.
    /// </summary>
    public System.Diagnostics.Process StartSlurmHook(string context, string jobId, params (string Key, string Value)[] extra) =>
        StartSlurmHook(context, jobId, Binary(), [], extra);

    /// <summary>The same environment for <paramref name="program"/> (e.g. a shell that runs the binary under a limit).</summary>
    public System.Diagnostics.Process StartSlurmHook(string context, string jobId, string program, string[] args, params (string Key, string Value)[] extra)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment.Clear();
        foreach (var (k, v) in new Dictionary<string, string>
                 {
                     ["SLURM_JOB_ID"] = jobId, ["SLURM_JOB_USER"] = "root", ["SLURM_JOB_UID"] = "0", ["SLURM_JOB_GID"] = "0",
                     ["SLURMD_NODENAME"] = "node1", ["SLURM_CLUSTER_NAME"] = "test", ["SLURM_SCRIPT_CONTEXT"] = context,
                     ["ALUMET_HPC_CONFIG"] = ConfigPath,
                 })
            psi.Environment[k] = v;
        foreach (var (k, v) in extra) psi.Environment[k] = v;
        return System.Diagnostics.Process.Start(psi)!;
    }

    /// <summary>The native binary from `make publish` (ALUMET_HPC_BIN), else the apphost of the last build.</summary>
    public static string Binary()
    {
        if (Environment.GetEnvironmentVariable("ALUMET_HPC_BIN") is { Length: > 0 } bin && File.Exists(bin)) return bin;
        string dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Alumet.Hpc.sln")))
            dir = Path.GetDirectoryName(dir) ?? throw new FileNotFoundException("repository root not found");
        foreach (string cfg in new[] { "Release", "Debug" })
        {
            string apphost = Path.Combine(dir, "src", "Alumet.Hpc.Cli", "bin", cfg, "net10.0", "linux-x64", "alumet-hpc");
            if (File.Exists(apphost)) return apphost;
        }
        throw new FileNotFoundException("alumet-hpc binary not found: run `make publish` or `dotnet build src/Alumet.Hpc.Cli`");
    }
}
