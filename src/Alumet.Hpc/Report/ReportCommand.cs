using System.CommandLine;
using System.Text.RegularExpressions;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Outputs.Accounting;
using System.Data.Common;

namespace Alumet.Hpc.Report;

/// <summary>Who runs the report and where it writes. Tests build one by hand; the CLI's <c>ReportEntry</c> applies the trust rules.</summary>
/// <param name="RealUid">The caller's real uid (getuid), not an environment variable a user could set.</param>
/// <param name="IsAdmin">Root, or an admin of the system config (<see cref="ReportAdmins"/>): may see every user's jobs.</param>
/// <param name="LocalCluster">[cluster] name of the config: the default cluster filter when set (sacct shows the local cluster).</param>
/// <param name="Zone">Time zone of printed times and of -S/-E (the caller's TZ, like sacct); null = the process's local zone.</param>
/// <param name="NowUtc">"now" for -S/-E and the default window; null = the clock (tests fix it).</param>
public sealed record ReportEnvironment(int RealUid, bool IsAdmin, string DatabasePath, TextWriter Out, TextWriter Err,
    string LocalCluster = "", TimeZoneInfo? Zone = null, DateTime? NowUtc = null)
{
    /// <summary>The PostgreSQL server to read instead of <see cref="DatabasePath"/> ([database] url; null: SQLite). --db still names a SQLite file.</summary>
    public AccountingBackend? Server { get; init; }
}

/// <summary>
/// <c>alumet-report</c>: sacct-like energy report from the accounting database.
/// Lines: the job (all nodes), then one line per node for multi-node jobs, then steps (<c>1234.batch</c>,
/// <c>1234.0</c>), which are parts of the job line and never added to it. Without <c>-j</c>, like sacct: the caller's
/// own jobs since 00:00 today (<c>-S/-E</c> change the window, <c>-a</c> and <c>-u</c> widen it for admins).
/// A user who is not an admin sees only jobs run under their own uid; another user's job reads exactly like a missing one.
/// Rows are streamed: any number, constant memory. Exit codes: 0 ok (an unknown job prints the header, as sacct),
/// 1 database unreadable, 2 bad arguments.
/// </summary>
public static partial class ReportCommand
{
    public const string Name = "alumet-report";

    /// <summary>Values of -j, -u, -M, -N and --name together: below SQLite's 32766 parameters per statement.</summary>
    private const int MaxListedValues = 30_000;

    /// <summary>Notes kept for the block under a table; beyond, a count (constant memory for any listing).</summary>
    private const int MaxNotes = 100;

    [GeneratedRegex(@"^[0-9]{1,20}(\.[A-Za-z0-9_]{1,32})?$")]
    private static partial Regex JobIdPattern();

    /// <summary>
    /// The parser's settings: no response files. System.CommandLine expands an argument "@FILE" into FILE's words by
    /// default, and the report may hold the gate's group while it parses (README, "Who sees what"): "@FILE" would read a
    /// file only that group may read (the read-only role's password) and echo its words in the error.
    /// </summary>
    private static readonly ParserConfiguration Parsing = new() { ResponseFileTokenReplacer = null };

    /// <summary>Parses and runs; a parse error is one line on stderr (exit 2), not a help page.</summary>
    public static int Run(string[] args, ReportEnvironment env)
    {
        var root = Create(env);
        var parsed = root.Parse(args, Parsing);
        if (parsed.Errors.Count > 0)
        {
            env.Err.WriteLine($"{Name}: error: {parsed.Errors[0].Message}");
            return 2;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = env.Out, Error = env.Err, EnableDefaultExceptionHandler = false });
    }

    /// <summary>
    /// The <c>--db</c> value of <paramref name="args"/> exactly as <see cref="Run"/> will read it (every spelling the parser
    /// takes: <c>--db F</c>, <c>--db=F</c>, <c>--db:F</c>), so that whoever decides which rights open it sees the same
    /// file; null when absent or when the arguments do not parse (then nothing is opened).
    /// </summary>
    public static string? DatabaseArgument(string[] args)
    {
        var parsed = Create(new ReportEnvironment(0, false, "", TextWriter.Null, TextWriter.Null)).Parse(args, Parsing);
        return parsed.Errors.Count > 0 ? null : parsed.GetValue<string>(DbOption);
    }

    private const string DbOption = "--db";

    public static RootCommand Create(ReportEnvironment env)
    {
        Option<string[]> List(string name, string alias, string description, params string[] more) =>
            new(name, [alias, .. more]) { Description = description, AllowMultipleArgumentsPerToken = false, Arity = ArgumentArity.OneOrMore };
        var job = List("--jobs", "-j", "Job id(s), comma-separated or repeated: 1234, 1234.batch, 1234.0", "--job");
        var user = List("--user", "-u", "Only jobs of these users, by name or uid (comma-separated or repeated; admins)", "--uid");
        var cluster = List("--clusters", "-M", "Only jobs of these clusters (default: [cluster] name when set, else every cluster)", "--cluster");
        var allClusters = new Option<bool>("--allclusters", "-L") { Description = "Jobs of every cluster" };
        var start = new Option<string>("--starttime", "-S") { Description = $"Jobs running at or after this time (default: 00:00 today without -j). {SacctTime.Formats}" };
        var end = new Option<string>("--endtime", "-E") { Description = "Jobs running at or before this time (default: now)" };
        var allUsers = new Option<bool>("--allusers", "-a") { Description = "Every user's jobs (admins; others always see only their own)" };
        var state = List("--state", "-s", "Only rows with this measurement status: complete, partial, not_measured");
        var nodes = List("--nodelist", "-N", "Only jobs that ran on these nodes: n1,n2 or n[1-4,7]");
        var name = new Option<string[]>("--name")
        {
            Description = "Only jobs with one of these names (comma-separated or repeated; exact, as sacct)",
            AllowMultipleArgumentsPerToken = false, Arity = ArgumentArity.OneOrMore,
        };
        var format = new Option<string>("--format", "-o") { Description = $"Fields, comma-separated, optional %WIDTH (sacct style). Default: {ReportFields.DefaultFormat}" };
        var helpFormat = new Option<bool>("--helpformat", "-e") { Description = "List the fields --format accepts" };
        var parsable = new Option<bool>("--parsable", "-p") { Description = "Fields separated by '|' (or --delimiter), with a trailing one" };
        var parsable2 = new Option<bool>("--parsable2", "-P") { Description = "Fields separated by '|' (or --delimiter), no trailing one" };
        var delimiter = new Option<string>("--delimiter") { Description = "Separator of -p/-P (default '|')" };
        var noheader = new Option<bool>("--noheader", "-n") { Description = "No header line" };
        var json = new Option<bool>("--json") { Description = "JSON shaped like sacct --json (jobs[], steps[], tres), every value in J, W, s, epoch seconds" };
        var noconvert = new Option<bool>("--noconvert") { Description = "Energies in J and powers in W, without K/M/G prefixes" };
        var units = new Option<string>("--units") { Description = "Energies and powers in this unit: K, M, G, T or P" };
        var utc = new Option<bool>("--utc") { Description = "Times in UTC (default: local time, as sacct; TZ applies)" };
        var allocations = new Option<bool>("--allocations", "-X") { Description = "Only the job lines (no node or step lines), like sacct -X" };
        var runs = new Option<bool>("--runs", "--duplicates", "-D") { Description = "Every run of a reused job id (default: the latest run; sacct's -D/--duplicates)" };
        var db = new Option<string>(DbOption) { Description = $"Accounting database (default: {env.DatabasePath}); users: read with their own rights" };
        var parquet = new Option<bool>("--parquet") { Description = "Print the job's Parquet file paths, one per line" };
        var timeline = new Option<bool>("--timeline") { Description = "Power per domain per period from the job's Parquet files, with a text sparkline" };
        var plot = new Option<string>("--plot") { Description = "Draw power per domain over time from the job's Parquet files into FILE.png or FILE.svg" };

        var root = new RootCommand("Energy used by jobs (sacct-like). TotalEnergy = ConsumedEnergy = package + dram + gpu.")
        {
            job, user, cluster, allClusters, start, end, allUsers, state, nodes, name, format, helpFormat, parsable, parsable2, delimiter,
            noheader, json, noconvert, units, utc, allocations, runs, db, parquet, timeline, plot,
        };
        root.SetAction(pr => Execute(env, new ReportRequest(
            Join(pr.GetValue(job)), Join(pr.GetValue(user)), Join(pr.GetValue(cluster)), pr.GetValue(format),
            pr.GetValue(json) ? ReportLayout.Json : pr.GetValue(parsable2) ? ReportLayout.Parsable2 : pr.GetValue(parsable) ? ReportLayout.Parsable : ReportLayout.Table,
            !pr.GetValue(noheader), pr.GetValue(noconvert), pr.GetValue(db), pr.GetValue(allocations))
        {
            AllClusters = pr.GetValue(allClusters), Start = pr.GetValue(start), End = pr.GetValue(end), AllUsers = pr.GetValue(allUsers),
            States = Join(pr.GetValue(state)), Nodes = Join(pr.GetValue(nodes)), Names = Join(pr.GetValue(name)), HelpFormat = pr.GetValue(helpFormat),
            Delimiter = pr.GetValue(delimiter), Units = pr.GetValue(units), Utc = pr.GetValue(utc), AllRuns = pr.GetValue(runs),
            Parquet = pr.GetValue(parquet), Timeline = pr.GetValue(timeline), Plot = pr.GetValue(plot),
        }));
        return root;
    }

    private static string? Join(string[]? values) => values is { Length: > 0 } ? string.Join(',', values) : null;

    /// <summary>Everything the command line asked for.</summary>
    public sealed record ReportRequest(string? Jobs, string? Users, string? Cluster, string? Format, ReportLayout Layout, bool Header, bool NoConvert,
        string? Database, bool AllocationsOnly = false)
    {
        public bool AllClusters { get; init; }
        public string? Start { get; init; }
        public string? End { get; init; }
        public bool AllUsers { get; init; }
        public string? States { get; init; }
        public string? Nodes { get; init; }
        public string? Names { get; init; }
        public bool HelpFormat { get; init; }
        public string? Delimiter { get; init; }
        public string? Units { get; init; }
        public bool Utc { get; init; }
        public bool AllRuns { get; init; }
        public bool Parquet { get; init; }
        public bool Timeline { get; init; }
        public string? Plot { get; init; }
        /// <summary>--parquet, --timeline or --plot: views of the jobs' Parquet files instead of the table (ReportParquet).</summary>
        public bool ParquetView => Parquet || Timeline || Plot is not null;
    }

    public static int Execute(ReportEnvironment env, ReportRequest req)
    {
        if (req.HelpFormat)
        {
            env.Out.Write(ReportFields.HelpFormat());
            return 0;
        }
        // 1. Arguments (nothing touches the database before they are valid).
        var requested = new List<(string Job, string? Step, string Text)>();
        foreach (var id in Split(req.Jobs))
        {
            if (!JobIdPattern().IsMatch(id))
                return Fail(env, $"invalid job id '{Printable(id)}' (expected digits, optionally .step: 1234, 1234.batch, 1234.0)", 2);
            int dot = id.IndexOf('.');
            requested.Add((dot < 0 ? id : id[..dot], dot < 0 ? null : id, id));
        }
        if (req.ParquetView && ReportParquet.CheckArguments(req, requested.Count) is { } bad) return Fail(env, bad, 2);
        IReadOnlyList<FieldSpec> fields;
        ValueStyle style;
        DateTime? since, until;
        List<string> states, nodeExpressions;
        long nodeCount;
        var zone = req.Utc ? TimeZoneInfo.Utc : env.Zone ?? TimeZoneInfo.Local;
        var now = env.NowUtc ?? DateTime.UtcNow;
        try
        {
            fields = ReportFields.Parse(req.Format ?? ReportFields.DefaultFormat);
            style = new ValueStyle(req.NoConvert, ReportFields.ParseUnit(req.Units), zone);
            // sacct: without -j the window starts at 00:00 today; with -j it is unbounded unless -S is given.
            since = req.Start is { } s ? SacctTime.Parse(s, now, zone) : requested.Count > 0 ? null : SacctTime.Parse("today", now, zone);
            until = req.End is { } e ? SacctTime.Parse(e, now, zone) : null;
            if (since > until) throw new FormatException("the start time (-S) is after the end time (-E)");
            states = Split(req.States).Select(JobStatusArgument).ToList();
            // Counted, not built: the hosts of -N are made once the limit below is checked (HostList.Count).
            nodeExpressions = HostList.SplitExpressions(req.Nodes).ToList();
            nodeCount = nodeExpressions.Sum(HostList.Count);
            if (req.Delimiter is "") throw new FormatException("--delimiter needs at least one character");
        }
        catch (FormatException e) { return Fail(env, e.Message, 2); }

        // 2. Rows the caller may see. sacct: without -j, -u or -a, the caller's own jobs, admins included.
        var users = Split(req.Users).ToList();
        int? uid = !env.IsAdmin || (!req.AllUsers && requested.Count == 0 && users.Count == 0) ? env.RealUid : null;
        var clusters = Split(req.Cluster).ToList();
        var names = Split(req.Names).ToList();
        // Each listed value is one statement parameter (a user up to two: its name and its uid): SQLite takes at most 32766
        // per statement, and past it said "cannot read <database>: SQLite Error 1: 'too many SQL variables'", exit 1.
        long listed = requested.Select(r => r.Job).Distinct().Count() + 2L * users.Count + clusters.Count + names.Count + nodeCount;
        if (listed > MaxListedValues)
            return Fail(env, $"too many values in -j, -u, -M, -N and --name together ({listed}; at most {MaxListedValues}): split the query", 2);
        var nodeList = nodeExpressions.SelectMany(HostList.Expand).ToList();
        if (clusters.Count == 0 && !req.AllClusters && env.LocalCluster.Length > 0) clusters.Add(env.LocalCluster);
        var query = new JobQuery(requested.Count > 0 ? requested.Select(r => r.Job).Distinct().ToList() : null, Uid: uid,
            Runs: req.AllRuns ? RunSelection.All : RunSelection.Latest, Users: users, Clusters: clusters, Since: since, Until: until,
            Nodes: nodeList, WithSteps: !req.AllocationsOnly, Names: names);

        var server = string.IsNullOrEmpty(req.Database) ? env.Server : null;
        string path = server?.Where ?? (string.IsNullOrEmpty(req.Database) ? env.DatabasePath : req.Database);
        var missing = new List<string>();
        List<ReportJob>? parquetJobs = null;
        // A listing of a SQLite file is spilled while its statement runs (ReportSpill: a blocked pipe kept writers out).
        ReportSpill? made = null;
        try { if (server is null && requested.Count == 0 && !req.ParquetView) made = ReportSpill.Create(); }
        catch (ReportSpill.Failed e) { return Fail(env, e.Message, 1); }
        using var spill = made;
        var listEnv = spill is null ? env : env with { Out = spill.Out, Err = spill.Err };
        try
        {
            // SQLite says only "unable to open database file"; a plain open says why (permission denied).
            if (server is null && File.Exists(path)) File.OpenHandle(path, FileMode.Open, FileAccess.Read).Dispose();
            using var acct = server is not null ? AccountingDb.OpenReadOnly(server) : AccountingDb.OpenReadOnly(path);
            var output = req.ParquetView ? null : new ReportOutput(listEnv, req, fields, style);
            // -s is on the job's status (all nodes: a job with one partial node is partial), so it filters built jobs.
            var jobs = ReportBuilder.Stream(acct.Stream(query), req.AllRuns).Where(j => states.Count == 0 || states.Contains(j.Total.Status));
            if (requested.Count == 0)
            {
                long n = 0;
                foreach (var j in jobs)
                {
                    output?.Job(j, req.AllocationsOnly ? [j.Total] : j.Lines().ToList());
                    // Each job's objects are garbage at once, but the GC lets the heap grow to its gen0 budget (sized
                    // from the CPU cache: 80-90 MB measured here) before collecting; a young collection every 1024 jobs
                    // keeps a listing of any length near 20 MB (make bench).
                    if (++n % 1024 == 0) GC.Collect(0, GCCollectionMode.Forced, blocking: true);
                }
            }
            else
            {
                // -j: the jobs asked for (a bounded list), printed in the order asked, each line once.
                var found = jobs.ToList();
                if (!req.AllRuns) found = EarlierRuns(acct, query, states, found);
                var shown = new List<(ReportJob Job, List<ReportRow> Lines)>();
                foreach (var (jobId, step, text) in requested)
                {
                    bool any = false;
                    foreach (var j in found.Where(j => j.JobId == jobId))
                    {
                        var selected = step is null && req.AllocationsOnly ? [j.Total] : j.Lines(step).ToList();
                        if (selected.Count == 0) continue;
                        any = true;
                        int at = shown.FindIndex(x => ReferenceEquals(x.Job, j));
                        if (at < 0) shown.Add((j, selected));
                        else shown[at].Lines.AddRange(selected.Where(r => !shown[at].Lines.Contains(r)));
                    }
                    if (!any) missing.Add(text);
                }
                if (req.ParquetView) parquetJobs = shown.Select(x => x.Job).ToList();
                else foreach (var (j, lines) in shown) output!.Job(j, lines);
            }
            output?.End();
            spill?.Flush(); // all of it in the spill before the database closes: a failure is said below
        }
        catch (ReportSpill.Failed e) { return Fail(env, e.Message, 1); }
        catch (FileNotFoundException) { return Fail(env, $"no accounting database at {path}", 1); }
        catch (UnauthorizedAccessException)
        {
            return Fail(env, $"cannot read {path}: permission denied (it is readable by root and the group {ReportPrivilege.Group} only: "
                + "run the alumet-report installed as README's Install section says, or ask an administrator)", 1);
        }
        catch (Exception e) when (e is DbException or InvalidDataException or IOException)
        {
            return Fail(env, server is PostgresBackend pg ? $"cannot read the accounting database: {pg.DescribeRead(e)}" : $"cannot read {path}: {ErrorText.Describe(e)}", 1);
        }

        spill?.CopyTo(env.Out, env.Err); // the database is closed: the caller may now read at their own pace
        if (parquetJobs is not null) return ReportParquet.Run(env, req, parquetJobs, missing, path);

        // sacct prints the header and exits 0 for an unknown job; the note says so, in the same words whether the job
        // does not exist or belongs to someone else (no information leaks).
        foreach (var m in missing)
            env.Err.WriteLine($"{Name}: note: job {m} not found in {path}{NotFoundHint(env, req)}");
        return 0;
    }

    /// <summary>
    /// <paramref name="found"/> (the latest run of each job asked for with -j, as sacct shows without -D), each with a
    /// note when the same query finds earlier runs of its id, which the latest-run rule hid without a word. The runs
    /// counted are those the caller may see with the same filters (a user's own: another user's run of the id is never
    /// counted, README "Who sees what").
    /// </summary>
    private static List<ReportJob> EarlierRuns(AccountingDb acct, JobQuery query, List<string> states, List<ReportJob> found)
    {
        if (found.Count == 0) return found;
        // A run is earlier when none of its rows is shown: the latest run's rows may count as more than one run (a node's
        // row with no time is its run id's run only, ReportBuilder.SameRun) and are all shown.
        static IEnumerable<(string, string, string, string, string)> Rows(ReportJob j) =>
            j.NodeRows.Select(r => (j.Cluster, j.Scheduler, j.JobId, string.Join(',', r.Nodes), r.RunId));
        var shown = found.SelectMany(Rows).ToHashSet();
        var runs = new Dictionary<(string, string, string), int>();
        foreach (var j in ReportBuilder.Stream(acct.Stream(query with { Runs = RunSelection.All, WithSteps = false }), eachRun: true))
            if ((states.Count == 0 || states.Contains(j.Total.Status)) && !Rows(j).Any(shown.Contains))
                runs[(j.Cluster, j.Scheduler, j.JobId)] = runs.GetValueOrDefault((j.Cluster, j.Scheduler, j.JobId)) + 1;
        return found.Select(j => runs.GetValueOrDefault((j.Cluster, j.Scheduler, j.JobId)) is var earlier and > 0
            ? j with { Notes = [.. j.Notes, $"EARLIER RUNS: job {j.JobId}: {earlier} earlier run(s) of this job id not shown (the latest run is, as sacct); "
                + "--runs (sacct's -D) shows every run."] }
            : j).ToList();
    }

    /// <summary>
    /// Why a job asked for with -j may be missing, in the same words whether it does not exist or is another user's (no
    /// information leaks): not the caller's, or left out by the other filters given with it (a job of the caller's that
    /// -s, -S/-E, -N, --name or -M leave out used to read as "not found" without a word on them).
    /// </summary>
    internal static string NotFoundHint(ReportEnvironment env, ReportRequest req)
    {
        var filters = new List<string>();
        if (req.Start is not null || req.End is not null) filters.Add("-S/-E");
        if (!string.IsNullOrWhiteSpace(req.States)) filters.Add("-s");
        if (!string.IsNullOrWhiteSpace(req.Nodes)) filters.Add("-N");
        if (!string.IsNullOrWhiteSpace(req.Names)) filters.Add("--name");
        if (!string.IsNullOrWhiteSpace(req.Cluster)) filters.Add("-M");
        var reasons = new List<string>();
        if (!env.IsAdmin) reasons.Add("not yours");
        if (filters.Count > 0) reasons.Add($"left out by {string.Join(", ", filters)}");
        return reasons.Count == 0 ? "" : $" (or {string.Join(", or ", reasons)})";
    }

    /// <summary>-s values: the measurement status of a row (the database holds no scheduler job state).</summary>
    private static string JobStatusArgument(string s)
    {
        string v = s.ToLowerInvariant().Replace('-', '_');
        return JobStatus.IsValid(v) ? v
            : throw new FormatException($"invalid state '{Printable(s)}' (use {JobStatus.Complete}, {JobStatus.Partial} or {JobStatus.NotMeasured}: the measurement status)");
    }

    private static IEnumerable<string> Split(string? list) =>
        string.IsNullOrWhiteSpace(list) ? [] : list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    internal static int Fail(ReportEnvironment env, string message, int code)
    {
        env.Err.WriteLine($"{Name}: error: {message}");
        return code;
    }

    /// <summary>Echoes user input safely (<see cref="ReportFields.Untrusted"/>), long input cut.</summary>
    internal static string Printable(string s) => ReportFields.Untrusted(s.Length > 64 ? s[..64] : s) + (s.Length > 64 ? "..." : "");

    /// <summary>
    /// Writes jobs as they come: table rows and parsable lines at once, JSON one job object at a time, notes under a table
    /// (the first <see cref="MaxNotes"/>, then a count) or on stderr for -p/-P/--json. Memory does not grow with the rows.
    /// </summary>
    private sealed class ReportOutput
    {
        private readonly ReportEnvironment _env;
        private readonly ReportRequest _req;
        private readonly IReadOnlyList<FieldSpec> _fields;
        private readonly ValueStyle _style;
        private readonly List<string> _notes = [];
        private readonly HashSet<string> _seenNotes = [];
        private long _moreNotes;
        private bool _first = true;

        public ReportOutput(ReportEnvironment env, ReportRequest req, IReadOnlyList<FieldSpec> fields, ValueStyle style)
        {
            (_env, _req, _fields, _style) = (env, req, fields, style);
            if (req.Layout == ReportLayout.Json) env.Out.Write(ReportFormatter.JsonStart());
            else if (req.Header) env.Out.Write(ReportFormatter.Header(fields, req.Layout, req.Delimiter ?? "|"));
        }

        public void Job(ReportJob job, List<ReportRow> lines)
        {
            if (_req.Layout == ReportLayout.Json)
            {
                _env.Out.Write(ReportFormatter.JsonJob(job, lines, _first));
                _first = false;
            }
            else
            {
                foreach (var r in lines) _env.Out.Write(ReportFormatter.Line(r, _fields, _req.Layout, _style, _req.Delimiter ?? "|"));
            }
            foreach (var n in job.Notes)
            {
                if (_req.Layout != ReportLayout.Table) _env.Err.WriteLine($"{Name}: note: {n}");
                else if (_notes.Count < MaxNotes) { if (_seenNotes.Add(n)) _notes.Add(n); }
                else _moreNotes++;
            }
        }

        public void End()
        {
            if (_req.Layout == ReportLayout.Json) _env.Out.Write(ReportFormatter.JsonEnd(_first));
            else if (_req.Layout == ReportLayout.Table)
            {
                if (_moreNotes > 0) _notes.Add($"... and {_moreNotes} more note(s): report fewer jobs (-j, -S/-E) to see them, or use -P (notes on stderr).");
                _env.Out.Write(ReportFormatter.Notes(_notes));
            }
            _env.Out.Flush();
        }
    }
}
