using Alumet.Hpc.Config;
using Alumet.Hpc.Report;

namespace Alumet.Hpc.Commands;

/// <summary>
/// <c>alumet-report</c> (or <c>alumet-hpc report</c>): finds the configuration, then hands the remaining
/// arguments to <see cref="ReportCommand"/>. The report reads the system database; an unprivileged user
/// without one (a laptop, a VM) reads the per-user database that their <c>alumet-hpc exec</c> runs fill.
/// </summary>
public static class ReportEntry
{
    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        error ??= Console.Error;
        var rest = new List<string>();
        string? configPath = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] is "--config" or "-c")
            {
                if (i + 1 >= args.Length)
                {
                    error.WriteLine($"{ReportCommand.Name}: error: --config needs a file");
                    return 2;
                }
                configPath = args[++i];
            }
            else if (args[i].StartsWith("--config=", StringComparison.Ordinal)) configPath = args[i]["--config=".Length..];
            else rest.Add(args[i]);
        }

        AlumetConfig cfg;
        try
        {
            cfg = ConfigLoader.Load(configPath, policy: DefaultPathPolicy.System).Config;
            if (!File.Exists(cfg.Paths.Database) && Native.Libc.getuid() != 0)
            {
                var personal = ConfigLoader.Load(configPath, policy: DefaultPathPolicy.PerUserWhenUnprivileged).Config;
                if (File.Exists(personal.Paths.Database)) cfg = personal;
            }
        }
        catch (ConfigException e)
        {
            error.WriteLine($"{ReportCommand.Name}: error: {e.Message}");
            return 2;
        }
        return ReportCommand.Run(rest.ToArray(), ReportEnvironment.FromConfig(cfg, output, error));
    }
}
