using System.CommandLine;
using System.Text.RegularExpressions;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Outputs.Accounting;
using Microsoft.Data.Sqlite;

namespace Alumet.Hpc.Report;

/// <summary>Who runs the report and where it writes. Tests build one by hand; the CLI's <c>ReportEntry</c> applies the trust rules.</summary>
/// <param name="RealUid">The caller's real uid (getuid), not an environment variable a user could set.</param>
/// <param name="IsAdmin">Root, or an admin of the system config (<see cref="ReportAdmins"/>): may see every user's jobs.</param>
public sealed record ReportEnvironment(int RealUid, bool IsAdmin, string DatabasePath, TextWriter Out, TextWriter Err);

/// <summary>
/// <c>alumet-report</c>: sacct-like energy report from the accounting database.
/// Lines: the job (all nodes), then one line per node for multi-node jobs, then steps (<c>1234.batch</c>,
/// <c>1234.0</c>), which are parts of the job line and never added to it. Times are UTC. A user who is not an admin
/// sees only jobs run under their own uid; another user's job reads exactly like a missing one.
/// Exit codes: 0 ok, 1 job not found / database unreadable, 2 bad arguments.
/// </summary>
public static partial class ReportCommand
{
    public const string Name = "alumet-report";

    [GeneratedRegex(@"^[0-9]{1,20}(\.[A-Za-z0-9_]{1,32})?$")]
    private static partial Regex JobIdPattern();

    /// <summary>Parses and runs; a parse error is one line on stderr (exit 2), not a help page.</summary>
    public static int Run(string[] args, ReportEnvironment env)
    {
        var root = Create(env);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            env.Err.WriteLine($"{Name}: error: {parsed.Errors[0].Message}");
            return 2;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = env.Out, Error = env.Err });
    }

    public static RootCommand Create(ReportEnvironment env)
    {
        var job = new Option<string>("--job", "-j") { Description = "Job id(s), comma-separated: 1234, 1234.batch, 1234.0" };
        var user = new Option<string>("--user", "-u") { Description = "Only jobs of these users (comma-separated)" };
        var cluster = new Option<string>("--cluster", "-M") { Description = "Only jobs of this cluster" };
        var format = new Option<string>("--format", "-o") { Description = $"Fields, comma-separated, optional %WIDTH (sacct style). Default: {ReportFields.DefaultFormat}" };
        var parsable = new Option<bool>("--parsable", "-p") { Description = "Fields separated by '|', with a trailing '|'" };
        var parsable2 = new Option<bool>("--parsable2", "-P") { Description = "Fields separated by '|', no trailing '|'" };
        var noheader = new Option<bool>("--noheader", "-n") { Description = "No header line" };
        var json = new Option<bool>("--json") { Description = "JSON with every field in J, W, s (ignores --format)" };
        var noconvert = new Option<bool>("--noconvert") { Description = "Energies in J and powers in W, without K/M/G prefixes" };
        var allocations = new Option<bool>("--allocations", "-X") { Description = "Only the job lines (no node or step lines), like sacct -X" };
        var db = new Option<string>("--db") { Description = $"Accounting database (default: {env.DatabasePath})" };

        var root = new RootCommand("Energy used by jobs (sacct-like). Times are UTC; TotalEnergy = package + dram + gpu.")
        {
            job, user, cluster, format, parsable, parsable2, noheader, json, noconvert, allocations, db,
        };
        root.SetAction(pr => Execute(env, new ReportRequest(
            pr.GetValue(job), pr.GetValue(user), pr.GetValue(cluster), pr.GetValue(format),
            pr.GetValue(json) ? ReportLayout.Json : pr.GetValue(parsable2) ? ReportLayout.Parsable2 : pr.GetValue(parsable) ? ReportLayout.Parsable : ReportLayout.Table,
            !pr.GetValue(noheader), pr.GetValue(noconvert), pr.GetValue(db), pr.GetValue(allocations))));
        return root;
    }

    /// <summary>Everything the command line asked for.</summary>
    public sealed record ReportRequest(string? Jobs, string? Users, string? Cluster, string? Format, ReportLayout Layout, bool Header, bool NoConvert,
        string? Database, bool AllocationsOnly = false);

    public static int Execute(ReportEnvironment env, ReportRequest req)
    {
        // 1. Arguments (nothing touches the database before they are valid).
        var requested = new List<(string Job, string? Step, string Text)>();
        foreach (var id in Split(req.Jobs))
        {
            if (!JobIdPattern().IsMatch(id))
                return Fail(env, $"invalid job id '{Printable(id)}' (expected digits, optionally .step: 1234, 1234.batch, 1234.0)", 2);
            int dot = id.IndexOf('.');
            requested.Add((dot < 0 ? id : id[..dot], dot < 0 ? null : id, id));
        }
        IReadOnlyList<FieldSpec> fields;
        try { fields = ReportFields.Parse(req.Format ?? ReportFields.DefaultFormat); }
        catch (FormatException e) { return Fail(env, e.Message, 2); }

        // 2. Rows the caller may see.
        string path = string.IsNullOrEmpty(req.Database) ? env.DatabasePath : req.Database;
        List<JobRecord> records;
        try
        {
            // SQLite says only "unable to open database file"; a plain open says why (permission denied).
            if (File.Exists(path)) File.OpenHandle(path, FileMode.Open, FileAccess.Read).Dispose();
            using var acct = AccountingDb.OpenReadOnly(path);
            int? uid = env.IsAdmin ? null : env.RealUid;
            var jobIds = requested.Select(r => r.Job).Distinct().ToList();
            var users = Split(req.Users).ToList();
            records = [];
            foreach (var u in users.Count == 0 ? [null] : users.Cast<string?>())
                records.AddRange(acct.Query(new JobQuery(jobIds.Count > 0 ? jobIds : null, u, uid, req.Cluster)));
        }
        catch (FileNotFoundException) { return Fail(env, $"no accounting database at {path}", 1); }
        catch (UnauthorizedAccessException)
        {
            return Fail(env, $"cannot read {path}: permission denied (it is readable by root and the group {ReportPrivilege.Group} only: "
                + "run the alumet-report installed as README's Install section says, or ask an administrator)", 1);
        }
        catch (Exception e) when (e is SqliteException or InvalidDataException or IOException)
        {
            return Fail(env, $"cannot read {path}: {ErrorText.Describe(e)}", 1);
        }

        var jobs = ReportBuilder.Build(records);
        if (req.AllocationsOnly) jobs = jobs.Select(j => j with { NodeRows = [], StepRows = [] }).ToList();

        // 3. What to print: all lines of each job, or only the asked-for step(s), in the order asked.
        var shown = new List<(ReportJob Job, List<ReportRow> Lines)>();
        var missing = new List<string>();
        if (requested.Count == 0)
        {
            foreach (var j in jobs) shown.Add((j, j.Lines().ToList()));
        }
        else
        {
            foreach (var (jobId, step, text) in requested)
            {
                bool any = false;
                foreach (var j in jobs.Where(j => j.JobId == jobId))
                {
                    var selected = j.Lines(step).ToList();
                    if (selected.Count == 0) continue;
                    any = true;
                    int at = shown.FindIndex(x => ReferenceEquals(x.Job, j));
                    if (at < 0) shown.Add((j, selected));
                    else shown[at].Lines.AddRange(selected.Where(r => !shown[at].Lines.Contains(r)));
                }
                if (!any) missing.Add(text);
            }
        }
        var lines = shown.SelectMany(x => x.Lines).ToList();
        var notes = shown.SelectMany(x => x.Job.Notes).Distinct().ToList();

        // 4. Output.
        var style = new ValueStyle(req.NoConvert);
        switch (req.Layout)
        {
            case ReportLayout.Json:
                env.Out.Write(ReportFormatter.Json(shown));
                break;
            case ReportLayout.Table:
                env.Out.Write(ReportFormatter.Text(lines, fields, req.Layout, req.Header, style));
                env.Out.Write(ReportFormatter.Notes(notes));
                break;
            default:
                env.Out.Write(ReportFormatter.Text(lines, fields, req.Layout, req.Header, style));
                foreach (var n in notes) env.Err.WriteLine($"{Name}: note: {n}");
                break;
        }
        env.Out.Flush();

        // Same words whether the job does not exist or belongs to someone else: no information leaks.
        foreach (var m in missing)
            env.Err.WriteLine($"{Name}: error: job {m} not found in {path}{(env.IsAdmin ? "" : " (or not yours)")}");
        return missing.Count > 0 ? 1 : 0;
    }

    private static IEnumerable<string> Split(string? list) =>
        string.IsNullOrWhiteSpace(list) ? [] : list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    private static int Fail(ReportEnvironment env, string message, int code)
    {
        env.Err.WriteLine($"{Name}: error: {message}");
        return code;
    }

    /// <summary>Echoes user input safely: control characters (terminal escapes) become '?', long input is cut.</summary>
    private static string Printable(string s)
    {
        var chars = s.Take(64).Select(c => char.IsControl(c) ? '?' : c).ToArray();
        return new string(chars) + (s.Length > 64 ? "..." : "");
    }
}
