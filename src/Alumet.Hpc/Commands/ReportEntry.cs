using Alumet.Hpc.Config;
using Alumet.Hpc.Outputs.Accounting;
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
            rest.Add(args[i]);
        }
        // The report's own parser says which file --db names (a scan of its own missed "--db:F"); arguments that do not
        // parse open nothing.
        string? dbPath = ReportCommand.DatabaseArgument(rest.ToArray());

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
                // On PostgreSQL the system's database is the server: a SQLite file, even at [paths] database, is the caller's choice.
                bool ownDb = !string.IsNullOrEmpty(dbPath)
                    && (system.Database.Url.Length > 0 || Path.GetFullPath(dbPath) != Path.GetFullPath(system.Paths.Database));
                if (userConfig || ownDb)
                {
                    ReportPrivilege.Drop();
                    if (userConfig) cfg = ConfigLoader.Load(configPath, policy: DefaultPathPolicy.System).Config;
                }
                if (string.IsNullOrEmpty(dbPath) && cfg.Database.Url.Length == 0 && !File.Exists(cfg.Paths.Database))
                {
                    // A workstation without a system database: the per-user one that `alumet-hpc exec` fills.
                    ReportPrivilege.Drop();
                    var personal = ConfigLoader.Load(configPath, CallerHome.Environment(), DefaultPathPolicy.PerUserWhenUnprivileged).Config;
                    if (File.Exists(personal.Paths.Database)) cfg = personal;
                }
            }
        }
        catch (ConfigException e)
        {
            error.WriteLine($"{ReportCommand.Name}: error: {e.Message}");
            return 2;
        }
        PostgresBackend? server = null;
        if (string.IsNullOrEmpty(dbPath) && cfg.Database.Url.Length > 0)
        {
            try { server = ReportServer(cfg, caller); }
            catch (InvalidDataException e)
            {
                error.WriteLine($"{ReportCommand.Name}: error: {e.Message}");
                return 1;
            }
        }
        return ReportCommand.Run(rest.ToArray(), new ReportEnvironment(caller.Uid, admin, cfg.Paths.Database, output ?? Console.Out, error, cfg.Cluster.Name)
            { Server = server });
    }

    /// <summary>
    /// The PostgreSQL server of <paramref name="cfg"/>: root reads through the writer's role (url, password_file);
    /// everyone else through the read-only role (report_url, report_password_file 0640 root:alumet), whose password is
    /// read while the gate's group is held, which is then given up for good before any connection (README, "Who sees what").
    /// </summary>
    /// <exception cref="InvalidDataException">No read-only role configured, or its password file is not safe: a sentence.</exception>
    private static PostgresBackend ReportServer(AlumetConfig cfg, Caller caller)
    {
        if (caller.IsRoot) return (PostgresBackend)AccountingBackends.For(cfg);
        var db = cfg.Database;
        if (db.ReportUrl.Length == 0 || db.ReportPasswordFile.Length == 0)
            throw new InvalidDataException("the accounting database is a PostgreSQL server and the system config sets no read-only role for reports: "
                + "ask an administrator to set [database] report_url and report_password_file (README, \"Who sees what\")");
        var url = DatabaseUrl.TryParse(db.ReportUrl, db.ReportPasswordFile, out string? e) ?? throw new InvalidDataException($"[database] report_url {e}");
        string password = DatabaseUrl.ReadReportPassword(db.ReportPasswordFile);
        ReportPrivilege.Drop();
        return new PostgresBackend(url, password);
    }
}
