using Alumet.Hpc.Config;
using Alumet.Hpc.Report;

namespace Alumet.Hpc.Commands;

/// <summary>
/// <c>alumet-report</c> (or <c>alumet-hpc report</c>): decides what the caller may read, then hands the remaining
/// arguments to <see cref="ReportCommand"/>. Trust rules (README, "Who sees what"):
/// <list type="bullet">
/// <item>Admins come from the system config only (<see cref="ReportPrivilege.SystemConfigPath"/>), matched by uid/gid.</item>
/// <item>Root may point the report anywhere (<c>--config</c>, <c>$ALUMET_HPC_CONFIG</c>, <c>--db</c>).</item>
/// <item>Anyone else reads the system database with the gate's group, and only their own rows. Anything they choose
/// (<c>--config</c>, <c>$ALUMET_HPC_CONFIG</c>, <c>--db</c> other than the system database, the per-user database
/// of <c>alumet-hpc exec</c>) is read after giving the group up for good, with their own file rights: it grants
/// nothing they could not read with sqlite3, and the uid filter still applies.</item>
/// </list>
/// </summary>
public static class ReportEntry
{
    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        error ??= Console.Error;
        var rest = new List<string>();
        string? configPath = null;
        string? dbPath = null;
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
                continue;
            }
            if (args[i].StartsWith("--config=", StringComparison.Ordinal))
            {
                configPath = args[i]["--config=".Length..];
                continue;
            }
            if (args[i] == "--db" && i + 1 < args.Length) dbPath = args[i + 1];
            else if (args[i].StartsWith("--db=", StringComparison.Ordinal)) dbPath = args[i]["--db=".Length..];
            rest.Add(args[i]);
        }

        var caller = Caller.Current();
        AlumetConfig cfg;
        bool admin;
        try
        {
            string systemPath = ReportPrivilege.SystemConfigPath();
            var system = File.Exists(systemPath) ? ConfigLoader.LoadFile(systemPath) : new AlumetConfig();
            admin = ReportAdmins.Resolve(system.Report).Includes(caller);
            bool userConfig = !string.IsNullOrEmpty(configPath) || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(ConfigLoader.EnvVar));
            if (caller.IsRoot)
            {
                cfg = ConfigLoader.Load(configPath, policy: DefaultPathPolicy.System).Config;
            }
            else
            {
                cfg = system;
                bool ownDb = !string.IsNullOrEmpty(dbPath) && Path.GetFullPath(dbPath) != Path.GetFullPath(system.Paths.Database);
                if (userConfig || ownDb)
                {
                    ReportPrivilege.Drop();
                    if (userConfig) cfg = ConfigLoader.Load(configPath, policy: DefaultPathPolicy.System).Config;
                }
                if (string.IsNullOrEmpty(dbPath) && !File.Exists(cfg.Paths.Database))
                {
                    // A workstation without a system database: the per-user one that `alumet-hpc exec` fills.
                    ReportPrivilege.Drop();
                    var personal = ConfigLoader.Load(configPath, policy: DefaultPathPolicy.PerUserWhenUnprivileged).Config;
                    if (File.Exists(personal.Paths.Database)) cfg = personal;
                }
            }
        }
        catch (ConfigException e)
        {
            error.WriteLine($"{ReportCommand.Name}: error: {e.Message}");
            return 2;
        }
        return ReportCommand.Run(rest.ToArray(), new ReportEnvironment(caller.Uid, admin, cfg.Paths.Database, output ?? Console.Out, error, cfg.Cluster.Name));
    }
}
