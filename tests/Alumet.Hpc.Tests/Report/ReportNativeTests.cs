using System.Diagnostics;
using System.Text.Json;
using Alumet.Hpc.Tests.Commands;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Spool;
using Microsoft.Data.Sqlite;
using Xunit;

namespace Alumet.Hpc.Tests.Report;

/// <summary>
/// alumet-report through the native binary (ALUMET_HPC_BIN): job names recorded by <c>exec</c> and selected with
/// <c>--name</c>, hostile names printed safely, and a listing whose memory does not grow with its length. The databases
/// are created by the binary itself (one <c>exec</c>), so these tests run unchanged against an older build.
/// </summary>
public sealed class ReportNativeTests
{
    private static (int Code, string Out, string Err) Report(params string[] args) => Run(out _, ["report", .. args]);

    private static (int Code, string Out, string Err) Run(out long peakRssKb, params string[] args)
    {
        var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), args)
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        })!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        // VmHWM only grows: its last value read before the exit is the peak of everything before it (the sort of a
        // listing happens before the first line, long before the end).
        long peak = 0;
        while (!p.HasExited)
        {
            try
            {
                foreach (string line in File.ReadLines($"/proc/{p.Id}/status"))
                    if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                        peak = Math.Max(peak, long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]));
            }
            catch (IOException) { }
            Thread.Sleep(5);
        }
        p.WaitForExit();
        peakRssKb = peak;
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static void Exec(TestInstallation install, string jobId, params string[] command)
    {
        var (code, _, err) = Run(out _, ["exec", "--config", install.ConfigPath, "--job-id", jobId, "--no-report", "--", .. command]);
        Assert.True(code == 0, err);
    }

    [Fact]
    public void ExecRecordsTheCommandAsTheJobNameAndNameSelectsIt()
    {
        using var install = ExecBinaryTests.NewInstall();
        string a = ExecIds.Next(), b = ExecIds.Next(), c = ExecIds.Next(); // ascending, as 71, 72, 73 were
        Exec(install, a, "true");
        Exec(install, b, "sh", "-c", "exit 0");
        Exec(install, c, "/bin/true");
        string[] list = ["--config", install.ConfigPath, "-S", "2000-01-01", "-X", "-P", "-n", "-o", "JobID,JobName"];
        Assert.Equal($"{a}|true\n{b}|sh\n{c}|true\n", Report(list).Out);
        Assert.Equal($"{a}|true\n{c}|true\n", Report([.. list, "--name", "true"]).Out);
        Assert.Equal($"{a}|true\n{b}|sh\n{c}|true\n", Report([.. list, "--name", "sh,true"]).Out);
        Assert.Equal($"{b}|sh\n", Report([.. list, "--name", "sh", "--name", "nothing"]).Out);
        var none = Report([.. list, "--name", "tru"]); // exact names, as sacct
        Assert.Equal((0, "", ""), none);
        using var doc = JsonDocument.Parse(Report("--config", install.ConfigPath, "-j", b, "--json").Out);
        Assert.Equal("sh", doc.RootElement.GetProperty("jobs")[0].GetProperty("name").GetString());
    }

    [Fact]
    public void AJobNameIsUntrustedTextInEveryLayout()
    {
        using var install = ExecBinaryTests.NewInstall();
        string id = ExecIds.Next();
        Exec(install, id, "true");
        // A name as a user can choose it (sbatch -J, oarsub -n): a terminal escape, a newline, the delimiter, a
        // right-to-left override, a tab.
        const string hostile = "x\u001b[2J\u001b]0;pwned\u0007|y\nz\u202Eq\tw";
        using (var con = new SqliteConnection($"Data Source={install.Config.Paths.Database}"))
        {
            con.Open();
            using var cmd = con.CreateCommand();
            cmd.CommandText = $"UPDATE jobs SET job_name = $n WHERE job_id = '{id}';";
            cmd.Parameters.AddWithValue("$n", hostile);
            Assert.Equal(1, cmd.ExecuteNonQuery());
        }
        const string safe = "x?[2J?]0;pwned?|y?z?q?w";
        string[] one = ["--config", install.ConfigPath, "-j", id, "-X"];
        Assert.Equal($"{id}|{safe.Replace('|', '/')}\n", Report([.. one, "-P", "-n", "-o", "JobID,JobName"]).Out);
        Assert.Equal($"{id};{safe.Replace(';', '/')}\n", Report([.. one, "-P", "-n", "-o", "JobID,JobName", "--delimiter", ";"]).Out);
        string table = Report([.. one, "-n", "-o", "JobID,JobName%40"]).Out;
        Assert.StartsWith($"{id,12} {safe,40}\n", table);
        string json = Report("--config", install.ConfigPath, "-j", id, "--json").Out;
        Assert.DoesNotContain('\u001b', json);
        Assert.DoesNotContain('\u202E', json);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(safe, doc.RootElement.GetProperty("jobs")[0].GetProperty("name").GetString());
        // Selecting by the stored name works; the echo of a bad argument is just as safe.
        var bad = Report("--config", install.ConfigPath, "-j", "8\u001b[31m1");
        Assert.Equal(2, bad.Code);
        Assert.Equal("alumet-report: error: invalid job id '8?[31m1' (expected digits, optionally .step: 1234, 1234.batch, 1234.0)\n", bad.Err);
    }

    /// <summary>
    /// Bad -N and -S/-E values are one sentence and exit 2, before the database is read. An unclosed bracket in -N used to
    /// drop the whole node filter (every job listed, exit 0); a relative time past the calendar printed .NET's
    /// "Value to add was out of range. (Parameter 'value')" with exit 1.
    /// </summary>
    [Fact]
    public void ANodeListOrTimeThatCannotBeReadIsASentenceAndExit2()
    {
        using var install = ExecBinaryTests.NewInstall();
        string id = ExecIds.Next();
        Exec(install, id, "true");
        string[] all = ["--config", install.ConfigPath, "-S", "2000-01-01", "-P", "-n", "-o", "JobID"];
        var listed = Report(all);
        Assert.Equal((0, $"{id}\n"), (listed.Code, listed.Out));
        const string nodes = " (use n1,n2 or n[1-4,7], at most 10000 nodes)\n";
        foreach (var (arg, echo) in new[] { ("n[1-", "n[1-"), ("n[1-4", "n[1-4"), ("n[1-,node1", "n[1-,node1"), ("node1,n[", "n[") })
            Assert.Equal((2, "", $"alumet-report: error: invalid node list '{echo}'{nodes}"), Report([.. all, "-N", arg]));
        const string times = " (use YYYY-MM-DD[THH:MM[:SS]], MMDD[YY][-HH:MM[:SS]], MM/DD[/YY][-HH:MM[:SS]], MM.DD[.YY][-HH:MM[:SS]], HH:MM[:SS][AM|PM], "
            + "now[{+|-}N[seconds|minutes|hours|days|weeks]], today, midnight, noon, elevenses, fika, teatime, tomorrow)\n";
        foreach (var (opt, arg, echo) in new[]
        {
            ("-S", "now+999999999weeks", "now+999999999weeks"), ("-E", "now-999999999w", "now-999999999w"),
            ("-S", "now-999999999days", "now-999999999days"), ("-S", "x\u001b[31m", "x?[31m"),
        })
            Assert.Equal((2, "", $"alumet-report: error: invalid time '{echo}'{times}"), Report("--config", install.ConfigPath, opt, arg, "-P", "-n"));
        // More values than a statement takes (SQLite: 32766 parameters) used to be "cannot read <db>: SQLite Error 1:
        // 'too many SQL variables'", exit 1.
        Assert.Equal((2, "", "alumet-report: error: too many values in -j, -u, -M, -N and --name together (32000; at most 30000): split the query\n"),
            Report("--config", install.ConfigPath, "-j", string.Join(',', Enumerable.Range(1, 16_000)), "-j", string.Join(',', Enumerable.Range(16_001, 16_000)), "-P", "-n"));
        Assert.Equal((2, "", "alumet-report: error: too many values in -j, -u, -M, -N and --name together (39998; at most 30000): split the query\n"),
            Report("--config", install.ConfigPath, "-N", "n[1-9999],m[1-9999],k[1-9999],j[1-9999]", "-u", "root", "-P", "-n"));
    }

    /// <summary>
    /// A -o that cannot be read echoes the user's text as every other echoed argument (ReportCommand.Printable): control
    /// and format characters as '?', so no terminal escape or line break of theirs reaches a terminal or a log. The field
    /// name and the width were echoed as typed.
    /// </summary>
    [Fact]
    public void AFormatThatCannotBeReadEchoesItsTextSafely()
    {
        using var install = ExecBinaryTests.NewInstall();
        Exec(install, ExecIds.Next(), "true");
        var width = Report("--config", install.ConfigPath, "-P", "-o", "JobID%2\u001b[2J\u001b]0;pwned\u0007");
        Assert.Equal((2, "", "alumet-report: error: bad width in --format field 'JobID%2?[2J?]0;pwned?' (expected e.g. JobID%20)\n"), width);
        var field = Report("--config", install.ConfigPath, "-P", "-o", "JobID,Job\u001b]0;pwned\u0007x\rID\u202E");
        Assert.Equal((2, ""), (field.Code, field.Out));
        Assert.StartsWith("alumet-report: error: unknown --format field 'Job?]0;pwned?x?ID?' (known: JobID,", field.Err);
        Assert.DoesNotContain(field.Err.TrimEnd('\n'), c => char.IsControl(c) || c == '\u202E');
    }

    /// <summary>
    /// A job of the caller's that -s, -S/-E, -N or --name leaves out read as plainly "not found" (as if it did not exist);
    /// the note now names the filters. sacct's -D/--duplicates is --runs.
    /// </summary>
    [Fact]
    public void AJobLeftOutByAFilterSaysSoAndDIsSacctsDuplicates()
    {
        using var install = ExecBinaryTests.NewInstall();
        string id = ExecIds.Next();
        Exec(install, id, "true");
        string db = install.Config.Paths.Database;
        string[] one = ["--config", install.ConfigPath, "-j", id, "-P", "-n", "-o", "JobID"];
        Assert.Equal((0, "", $"alumet-report: note: job {id} not found in {db} (or left out by -s)\n"), Report([.. one, "-s", "partial"]));
        Assert.Equal((0, "", $"alumet-report: note: job {id} not found in {db} (or left out by -S/-E, -N, --name)\n"),
            Report([.. one, "-E", "2000-01-01", "-N", "nowhere", "--name", "nothing"]));
        Assert.Equal((0, "", $"alumet-report: note: job 63 not found in {db}\n"), Report("--config", install.ConfigPath, "-j", "63", "-P", "-n"));
        foreach (string runs in new[] { "--runs", "-D", "--duplicates" })
            Assert.Equal((0, $"{id}\n"), (Report([.. one, runs]).Code, Report([.. one, runs]).Out));
    }

    /// <summary>
    /// -N keeps the runs that ran on those nodes (with all their nodes). Job 500 ran on n1 and n2 (no SLUID: each node
    /// names the run by its own start, 3 ms apart), then, id reused, on n3; job 501 ran with a SLUID on n1 and n2, then
    /// on n2. -N's EXISTS matched any run of the id, so "-N n1 --runs" also showed the n3 run, and "-N n1" showed the
    /// latest run, which never ran on n1 (sacct shows the latest run only when it ran there). And --runs split the
    /// multi-node run without a SLUID into one job per node (it grouped rows by equal run ids).
    /// </summary>
    [Fact]
    public void MinusNKeepsTheRunsThatRanOnTheNode()
    {
        using var dir = new Alumet.Hpc.Tests.Outputs.TempDir();
        string db = dir.Sub("acct.db");
        int uid = (int)Alumet.Hpc.Native.Libc.getuid();
        string user = Environment.UserName;
        var t = new DateTime(2026, 11, 20, 8, 0, 0, DateTimeKind.Utc);
        var e = new Alumet.Hpc.Outputs.DomainEnergies(1000, 0, 0, 0, 0, 0);
        using (var w = Alumet.Hpc.Outputs.Accounting.AccountingDb.Open(db))
        {
            w.Upsert(ReportFixture.Rec("500", "n1", user, uid, t, 60, e, 20) with { RunId = "20261120T080000000Z" });
            w.Upsert(ReportFixture.Rec("500", "n2", user, uid, t.AddMilliseconds(3), 60, e, 20) with { RunId = "20261120T080000003Z" });
            w.Upsert(ReportFixture.Rec("500", "n3", user, uid, t.AddDays(1), 60, e, 20) with { RunId = "20261121T080000000Z" });
            w.Upsert(ReportFixture.Rec("501", "n1", user, uid, t, 60, e, 20) with { RunId = "S1" });
            w.Upsert(ReportFixture.Rec("501", "n2", user, uid, t.AddSeconds(1), 60, e, 20) with { RunId = "S1" });
            w.Upsert(ReportFixture.Rec("501", "n2", user, uid, t.AddDays(1), 60, e, 20) with { RunId = "S2" });
        }
        (int, string, string) Ids(params string[] args) => Report(["--db", db, "-X", "-P", "-n", "-o", "JobID,NodeList", .. args]);
        Assert.Equal((0, "500|n[1-2]\n500|n3\n501|n[1-2]\n501|n2\n", ""), Ids("-j", "500,501", "--runs"));
        Assert.Equal((0, "500|n[1-2]\n501|n[1-2]\n", ""), Ids("-j", "500,501", "--runs", "-N", "n1"));
        Assert.Equal((0, "500|n3\n", ""), Ids("-j", "500", "--runs", "-N", "n3"));
        Assert.Equal((0, "501|n[1-2]\n501|n2\n", ""), Ids("-j", "501", "-D", "-N", "n2"));
        const string earlier = "earlier run(s) of this job id not shown (the latest run is, as sacct); --runs (sacct's -D) shows every run.\n";
        Assert.Equal((0, "500|n3\n501|n2\n", $"alumet-report: note: EARLIER RUNS: job 500: 1 {earlier}alumet-report: note: EARLIER RUNS: job 501: 1 {earlier}"),
            Ids("-j", "500,501"));
        Assert.Equal((0, "", $"alumet-report: note: job 500 not found in {db} (or left out by -N)\n"), Ids("-j", "500", "-N", "n1"));
    }

    /// <summary>
    /// README "alumet-report": without -M the jobs of <c>[cluster] name</c> when the config sets it, else of every
    /// cluster; -L every cluster; -M names clusters.
    /// </summary>
    [Fact]
    public void WithoutMTheConfigsClusterIsShownAndLShowsEveryCluster()
    {
        // Today's jobs of the caller (root), one per cluster.
        var rec = ReportFixture.Rec("510", "n1", Environment.UserName, (int)Alumet.Hpc.Native.Libc.getuid(), DateTime.UtcNow.AddMinutes(-5), 60,
            new Alumet.Hpc.Outputs.DomainEnergies(1000, 0, 0, 0, 0, 0), 20);
        using var dir = new Alumet.Hpc.Tests.Outputs.TempDir();
        string db = dir.Sub("acct.db");
        using (var w = Alumet.Hpc.Outputs.Accounting.AccountingDb.Open(db))
        {
            w.Upsert(rec);
            w.Upsert(rec with { JobId = "511", Cluster = "other" });
        }
        string named = dir.Sub("named.toml"), plain = dir.Sub("plain.toml");
        File.WriteAllText(named, $"[paths]\ndatabase = \"{db}\"\n\n[cluster]\nname = \"lab\"\n");
        File.WriteAllText(plain, $"[paths]\ndatabase = \"{db}\"\n");
        (int, string) Ids(string cfg, params string[] args)
        {
            var r = Report(["--config", cfg, "-a", "-X", "-P", "-n", "-o", "JobID,Cluster", .. args]);
            return (r.Code, r.Out);
        }
        Assert.Equal((0, "510|lab\n511|other\n"), Ids(plain));
        Assert.Equal((0, "510|lab\n"), Ids(named));
        Assert.Equal((0, "510|lab\n511|other\n"), Ids(named, "-L"));
        Assert.Equal((0, "510|lab\n511|other\n"), Ids(named, "--allclusters"));
        Assert.Equal((0, "511|other\n"), Ids(named, "-M", "other"));
        Assert.Equal((0, "510|lab\n511|other\n"), Ids(plain, "-M", "lab,other"));
    }

    /// <summary>README "alumet-report": exit 1 when the database cannot be read (not a database, none there), one line.</summary>
    [Fact]
    public void ADatabaseThatCannotBeReadIsOneLineAndExit1()
    {
        using var dir = new Alumet.Hpc.Tests.Outputs.TempDir();
        string garbage = dir.Sub("garbage.db"), none = dir.Sub("none.db");
        File.WriteAllText(garbage, string.Concat(Enumerable.Repeat("not a database ", 40)));
        Assert.Equal((1, "", $"alumet-report: error: cannot read {garbage}: SQLite Error 26: 'file is not a database'.\n"),
                     Report("--db", garbage, "-j", "1"));
        Assert.Equal((1, "", $"alumet-report: error: no accounting database at {none}\n"), Report("--db", none, "-j", "1"));
        Assert.False(File.Exists(none)); // a report never creates one
    }

    /// <summary>README "alumet-report", Fields: the list there is what <c>-e</c> prints, in order, and its default is the header.</summary>
    [Fact]
    public void TheReadmesFieldListIsWhatEPrintsAndItsDefaultIsTheHeader()
    {
        string readme = File.ReadAllText(Path.Combine(TwoUsersInstallation.RepoRoot(), "README.md"));
        var m = System.Text.RegularExpressions.Regex.Match(readme, @"\*\*Fields\*\* \(`-e` lists them\): `(?<all>[^`]+)` \(default:\s+`(?<def>[^`]+)`\)");
        Assert.True(m.Success, "README's Fields item not found");
        var e = Report("-e");
        Assert.Equal(0, e.Code);
        Assert.Equal(m.Groups["all"].Value.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries),
                     e.Out.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries));
        using var dir = new Alumet.Hpc.Tests.Outputs.TempDir();
        string db = dir.Sub("acct.db");
        using (Alumet.Hpc.Outputs.Accounting.AccountingDb.Open(db)) { }
        Assert.Equal((0, m.Groups["def"].Value.Replace(',', '|') + "\n"), (Report("--db", db, "-P").Code, Report("--db", db, "-P").Out));
    }

    /// <summary>
    /// A window (-S/-E) keeps the latest run in it, as sacct (its duplicate check sees what its window selected): an
    /// admin's listing of October lost job 600's October run because the id was reused in November, so a month's
    /// accounting missed every job whose id came round again later. Without a window, the latest run overall.
    /// </summary>
    [Fact]
    public void AWindowKeepsItsRunsOfAnIdReusedLater()
    {
        using var dir = new Alumet.Hpc.Tests.Outputs.TempDir();
        string db = dir.Sub("acct.db");
        int uid = (int)Alumet.Hpc.Native.Libc.getuid();
        var e = new Alumet.Hpc.Outputs.DomainEnergies(1000, 0, 0, 0, 0, 0);
        using (var w = Alumet.Hpc.Outputs.Accounting.AccountingDb.Open(db))
        {
            w.Upsert(ReportFixture.Rec("600", "n1", Environment.UserName, uid, new DateTime(2026, 10, 10, 8, 0, 0, DateTimeKind.Utc), 60, e, 20) with { RunId = "20261010T080000000Z" });
            w.Upsert(ReportFixture.Rec("600", "n2", Environment.UserName, uid, new DateTime(2026, 11, 20, 8, 0, 0, DateTimeKind.Utc), 60, e, 20) with { RunId = "20261120T080000000Z" });
        }
        (int, string, string) Ids(params string[] args) => Report(["--db", db, "-X", "-P", "-n", "-o", "JobID,NodeList", .. args]);
        Assert.Equal((0, "600|n1\n", ""), Ids("-a", "-S", "2026-10-01", "-E", "2026-10-31", "--utc"));
        Assert.Equal((0, "600|n1\n", ""), Ids("-j", "600", "-S", "2026-10-01", "-E", "2026-10-31", "--utc"));
        Assert.Equal((0, "600|n2\n", ""), Ids("-a", "-S", "2026-10-01", "--utc"));
        var latest = Ids("-j", "600");
        Assert.Equal((0, "600|n2\n"), (latest.Item1, latest.Item2));
        // The table's RunID column holds a whole run id (it was 18 wide: every start-time run id was cut, "20261120T08000000+").
        Assert.Equal("20261120T080000000Z", Report("--db", db, "-j", "600", "-X", "-n", "-o", "RunID").Out.Split('\n')[0]);
    }

    /// <summary>
    /// --runs (sacct's -D): a not_measured row with no time (the prolog never registered the job on n2) is the run of
    /// its run id only. It used to join whichever run came after it in the listing (an empty start sorts first), so job
    /// 810's run of a month ago on n1 and the n2 row of today read as one run on n[1-2]. Without --runs both rows stay
    /// the latest (nothing tells which ran later across nodes) and neither is counted as an earlier run.
    /// </summary>
    [Fact]
    public void UnderRunsARowWithNoTimeIsTheRunOfItsRunIdOnly()
    {
        using var dir = new Alumet.Hpc.Tests.Outputs.TempDir();
        string db = dir.Sub("acct.db");
        int uid = (int)Alumet.Hpc.Native.Libc.getuid();
        var monthAgo = DateTime.UtcNow.AddDays(-30);
        using (var w = Alumet.Hpc.Outputs.Accounting.AccountingDb.Open(db))
        {
            w.Upsert(ReportFixture.Rec("810", "n1", Environment.UserName, uid, monthAgo, 60, new Alumet.Hpc.Outputs.DomainEnergies(1000, 0, 0, 0, 0, 0), 20)
                with { RunId = Alumet.Hpc.Jobs.RunId.FromStart(monthAgo) });
            w.Upsert(Alumet.Hpc.Outputs.Accounting.JobRecord.NotMeasured(
                new Alumet.Hpc.Jobs.JobIdentity("slurm", "lab", "810", Environment.UserName, uid, "n2", Alumet.Hpc.Jobs.RunId.FromStart(DateTime.UtcNow)),
                "the prolog did not register this job"));
        }
        const string note = "alumet-report: note: NOT MEASURED: job 810 on n2: the prolog did not register this job.\n";
        Assert.Equal((0, "810|n2|not_measured\n810|n1|complete\n", note), Report("--db", db, "-j", "810", "--runs", "-X", "-P", "-n", "-o", "JobID,NodeList,State"));
        Assert.Equal((0, "810|n[1-2]|partial\n", note), Report("--db", db, "-j", "810", "-X", "-P", "-n", "-o", "JobID,NodeList,State"));
    }

    [Fact]
    public void AfterAnUpgradeDbFlushMigratesTheDatabaseAndTheReportReadsIt()
    {
        using var install = ExecBinaryTests.NewInstall();
        string id = ExecIds.Next();
        Exec(install, id, "true");
        // Back to schema 5, as an earlier release left it (no job names, the v3 window indexes, no cgroup_gone in jobs or steps).
        using (var con = new SqliteConnection($"Data Source={install.Config.Paths.Database};Pooling=false"))
        {
            con.Open();
            using var cmd = con.CreateCommand();
            cmd.CommandText = """
                DROP INDEX jobs_by_name; DROP INDEX jobs_by_window_end; DROP INDEX jobs_by_uid_window_end;
                ALTER TABLE jobs DROP COLUMN job_name;
                ALTER TABLE jobs DROP COLUMN cgroup_gone;
                ALTER TABLE steps DROP COLUMN cgroup_gone;
                CREATE INDEX jobs_by_end ON jobs(end_time); CREATE INDEX jobs_by_uid_end ON jobs(uid, end_time);
                PRAGMA user_version = 5;
                """;
            cmd.ExecuteNonQuery();
        }
        string[] job = ["--config", install.ConfigPath, "-j", id, "-X", "-P", "-n", "-o", "JobID,JobName,Status"];
        var before = Report(job);
        Assert.Equal(1, before.Code);
        Assert.Contains("is older than this tool", before.Err);
        // Nothing is queued in the outbox: flush still migrates.
        var flush = Run(out _, "db", "flush", "--config", install.ConfigPath);
        Assert.Equal((0, ""), (flush.Code, flush.Err));
        var after = Report(job);
        Assert.Equal((0, $"{id}||complete\n"), (after.Code, after.Out));
    }

    /// <summary>
    /// A listing streams: its peak memory must not grow with the number of rows. Before schema 6 the window's OR of
    /// two columns made SQLite collect every matching rowid in memory before the first row (+48 MB for 1 M rows).
    /// </summary>
    [Fact]
    public void AListingOfTenTimesTheRowsNeedsNoMoreMemory()
    {
        using var install = ExecBinaryTests.NewInstall();
        Exec(install, ExecIds.Next(), "true"); // the binary creates the database of its own schema
        const int Rows = 300_000;
        using (var con = new SqliteConnection($"Data Source={install.Config.Paths.Database}"))
        {
            con.Open();
            using var cmd = con.CreateCommand();
            // Job i starts at 2026-01-01 + i minutes and lasts 10 minutes.
            cmd.CommandText = $"""
                DELETE FROM steps; DELETE FROM jobs;
                WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {Rows})
                INSERT INTO jobs (cluster, scheduler, job_id, node, "user", uid, start_time, end_time, elapsed_s, energy_package_j,
                    total_energy_j, interfaces, status, run_id, updated_at)
                SELECT 'lab', 'slurm', i, 'n' || (i % 16), 'u' || (i % 100), 20000 + i % 100,
                    strftime('%Y-%m-%dT%H:%M:%S.000000Z', 1767225600 + i * 60, 'unixepoch'),
                    strftime('%Y-%m-%dT%H:%M:%S.000000Z', 1767225600 + i * 60 + 600, 'unixepoch'),
                    600, 1000, 1000, 'powercap', 'complete', 'r' || i, '2027-01-01T00:00:00.000000Z' FROM c;
                """;
            cmd.ExecuteNonQuery();
        }
        long Peak(string until, int expectedLines)
        {
            var (code, output, err) = Run(out long kb, ["report", "--config", install.ConfigPath, "--utc", "-a", "-S", "2026-01-01", "-E", until,
                "-X", "-P", "-n", "-o", "JobID"]);
            Assert.True(code == 0, err);
            Assert.Equal(expectedLines, output.Count(c => c == '\n'));
            return kb;
        }
        long tenth = Peak("2026-01-21T20:00:00", Rows / 10); // jobs 1..30 000
        long all = Peak("2027-12-31", Rows);
        Assert.True(all - tenth < 4096, $"peak RSS {tenth} kB for {Rows / 10} rows, {all} kB for {Rows}: the listing does not stream");
    }

    /// <summary>
    /// A listing of a SQLite database is kept in the temporary directory while the database is read (ReportSpill). One
    /// with no room left there (a full tmpfs as TMPDIR) is one sentence naming the directory, why and the fix, exit 1 as
    /// the report's other failures to read. Fails on a863da4: an unhandled exception (a stack trace) when the listing fits
    /// the spill's buffer, "cannot read DB: No space left on device" when it does not.
    /// </summary>
    [SkippableFact]
    public void ATemporaryDirectoryWithNoRoomForTheListingIsOneSentence()
    {
        Skip.If(Environment.UserName != "root", "needs root to mount a small tmpfs (a real full filesystem)");
        using var install = ExecBinaryTests.NewInstall();
        Exec(install, ExecIds.Next(), "true");
        string tmp = install.PathOf("tmp");
        Directory.CreateDirectory(tmp);
        Assert.Equal(0, SpoolWriterFullDiskTests.Run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", tmp));
        try
        {
            SpoolWriterFullDiskTests.Fill(tmp);
            var psi = new ProcessStartInfo(TestInstallation.Binary(), ["report", "--config", install.ConfigPath, "-S", "2000-01-01"])
                { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.Environment["TMPDIR"] = tmp;
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            Assert.Equal($"alumet-report: error: no room for the listing in the temporary directory {tmp} (No space left on device), where it is kept while the database is read; "
                + "free space there, or set TMPDIR to a directory with room (through alumet-report-gate it is always /tmp)\n", stderr.Result);
            Assert.Equal((1, ""), (p.ExitCode, stdout));
        }
        finally { SpoolWriterFullDiskTests.Run("umount", "-l", tmp); }
    }
}
