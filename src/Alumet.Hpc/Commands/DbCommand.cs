using System.CommandLine;
using Alumet.Hpc.Config;
using Alumet.Hpc.Outputs.Accounting;

namespace Alumet.Hpc.Commands;

/// <summary><c>alumet-hpc db flush</c>: writes the rows queued in this node's outbox to the accounting database now.</summary>
public static class DbCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var wait = new Option<double>("--wait") { Description = "give up after this many seconds (default 60)", DefaultValueFactory = _ => 60 };
        var flush = new Command("flush", "Write the rows queued in this node's outbox (<state_dir>/outbox) to the accounting database, and bring the database to this version's schema; prints what was stored and what is left")
        {
            config, wait,
        };
        flush.SetAction(r => Flush(r.GetValue(config), r.GetValue(wait)));
        return new Command("db", "Accounting database maintenance") { flush };
    }

    /// <returns>0 when the outbox is empty afterwards, 1 when rows are left (the message says why), 2 for a bad config.</returns>
    private static int Flush(string? configPath, double waitS)
    {
        AlumetConfig cfg;
        try { cfg = ConfigLoader.Load(configPath).Config; }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"alumet-hpc: {e.Message}");
            return 2;
        }
        if (!double.IsFinite(waitS) || waitS <= 0)
        {
            Console.Error.WriteLine($"alumet-hpc: db flush: --wait {waitS} is not a positive number of seconds");
            return 2;
        }
        // What the drain logs (an unreadable entry, a killed writer's temp removed) is the admin's to see: here and in the log.
        Core.Log.Configure(cfg.Paths.LogFile, "alumet-hpc", syslog: false, stderr: true);
        var outbox = Outbox.Of(cfg);
        var backend = AccountingBackends.For(cfg);
        Outbox.DrainResult r;
        try { r = outbox.Drain(backend, TimeSpan.FromSeconds(waitS)); }
        catch (UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"alumet-hpc: db flush: cannot read the outbox {outbox.Directory}: run it as root (the outbox belongs to the hooks)");
            return 1;
        }
        foreach (var row in r.StoredRows)
            Console.WriteLine($"stored: job {row.JobId} on {row.Node} (run {row.RunId}, {row.Scheduler}, {row.Status})");
        Console.WriteLine($"{r.Stored} row(s) stored in {backend.Where}; {r.Left} left in {outbox.Directory}{(r.Problem is null || r.Left == 0 ? "" : $": {r.Problem}")}");
        if (r.Left > 0) return 1;
        // After an upgrade the database may be a schema behind, and reports read only the current one: migrate it now
        // even when nothing was queued (a SQLite file that does not exist yet is left for the first row to create).
        if (backend is SqliteBackend sqlite && !File.Exists(sqlite.FilePath)) return 0;
        try
        {
            using var _ = AccountingDb.Open(backend, 1000, (int)Math.Min(int.MaxValue, waitS * 1000));
        }
        catch (Exception e) when (e is System.Data.Common.DbException or InvalidDataException or IOException or UnauthorizedAccessException
                                   or System.Net.Sockets.SocketException or TimeoutException)
        {
            Console.Error.WriteLine($"alumet-hpc: db flush: {backend.Where} was not migrated to schema {AccountingDb.SchemaVersion}: {backend.Describe(e)}");
            return 1;
        }
        return 0;
    }
}
