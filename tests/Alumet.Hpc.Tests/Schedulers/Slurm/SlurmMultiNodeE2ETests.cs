using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Outputs;
using Npgsql;

namespace Alumet.Hpc.Tests.Schedulers.Slurm;

/// <summary>
/// issue 9, a cluster on real Slurm: two logical nodes n1, n2 on this machine (Debian's Slurm 22.05 is built with
/// multiple-slurmd: one slurmd per node, own port), started by <c>LAB_NODES=2 tests/e2e/slurm/slurm-lab.sh start</c>
/// with <c>LAB_DB_ENV</c> naming the PostgreSQL lab (tests/e2e/postgres). Each node's hooks use their own config
/// (state_dir and outbox, log, a powercap tree at 50 W on n1 and 80 W on n2), selected by SLURMD_NODENAME, and write to
/// the one server; the report gate reads through the server's read-only role. Skipped unless
/// ALUMET_E2E_SLURM_MULTI=1 (tests/run-all.sh, .ci/run); with it, a lab that is not up fails.
/// </summary>
[Collection(SchedulerE2ECollection.Name)]
public sealed class SlurmMultiNodeE2ETests
{
    private const string Cluster = "mlab";
    private static readonly Dictionary<string, double> NodePowerW = new() { ["n1"] = 50, ["n2"] = 80 };
    private static readonly bool Enabled = Environment.GetEnvironmentVariable("ALUMET_E2E_SLURM_MULTI") == "1";
    private static readonly string Lab = Environment.GetEnvironmentVariable("ALUMET_E2E_SLURM_MULTI_LAB") ?? "/var/lib/alumet-hpc-e2e/slurm-multi";
    private static readonly string User = Environment.GetEnvironmentVariable("ALUMET_E2E_SLURM_USER") ?? "alumetuser";
    private static readonly string Bin = Environment.GetEnvironmentVariable("ALUMET_HPC_BIN") ?? "";
    private static readonly string PgLabDir = Environment.GetEnvironmentVariable("ALUMET_TEST_PG_LAB") ?? "/var/lib/alumet-hpc-e2e/postgres";
    /// <summary>A CPU-bound task of N seconds (a sleeping job gets no share of the node's energy).</summary>
    private static string Busy(int seconds) => $"bash -c 'end=$((SECONDS+{seconds})); while [ $SECONDS -lt $end ]; do :; done'";

    private static void RequireLab()
    {
        Skip.IfNot(Enabled, "set ALUMET_E2E_SLURM_MULTI=1 (after tests/e2e/postgres/pg-lab.sh start and LAB_NODES=2 LAB_DB_ENV=... "
            + "tests/e2e/slurm/slurm-lab.sh start, see tests/e2e/slurm/README.md) to run the multi-node Slurm tests");
        Assert.True(TestBackends.PgUrl is not null, "ALUMET_TEST_PG_URL is not set: source the PostgreSQL lab's env.sh");
        var ping = Run("scontrol", "ping");
        Assert.True(ping.Code == 0 && ping.Out.Contains("UP"), $"the multi-node Slurm lab is not up (scontrol ping: {ping.Out}{ping.Err})");
        Assert.Equal("n1 idle\nn2 idle", NodeStates());
    }

    [SkippableFact]
    public void TwoNodeJobAndOneJobPerNodeAtOnceGetOneRowPerNodeAndJobLineIsTheirSum()
    {
        RequireLab();
        // Three jobs at the same time: one on both nodes (a busy task on each), one on each node.
        string both = Sbatch(["-N2", "--ntasks-per-node=1"], $"srun {Busy(4)}");
        string on1 = Sbatch(["-N1", "-w", "n1"], Busy(4));
        string on2 = Sbatch(["-N1", "-w", "n2"], Busy(4));
        WaitDone(both, on1, on2);

        var rows = WaitRows(new() { [both] = ["n1", "n2"], [on1] = ["n1"], [on2] = ["n2"] });
        // They did run at once: every row's interval overlaps every other's.
        Assert.True(rows.Max(r => r.Start) < rows.Min(r => r.End), "the three jobs did not run at the same time");
        foreach (var r in rows)
        {
            AssertCompleteMeasurement(r);
            Assert.True(r.TotalJ > 0, $"job {r.JobId} on {r.Node}: no energy attributed to a busy job");
            Assert.Equal(r.PackageJ + r.DramJ + r.GpuJ, r.TotalJ);
            // Two jobs shared each node: a row holds the job's own share, and node-level energy only for periods it was
            // alone; the node's series are in the node's root-only file, checked below.
            Assert.True(r.NodeJ == 0 || r.NodeJ < NodePowerW[r.Node] * r.ElapsedS * 0.9, $"job {r.JobId} on {r.Node}: node-level {r.NodeJ} J in a shared job's row");
            // One Parquet file per job and node, in the shared data_dir, named by the node the hook was told.
            Assert.True(File.Exists(r.Parquet), $"job {r.JobId} on {r.Node}: {r.Parquet} missing");
            Assert.StartsWith($"slurm.{r.JobId}.{r.Node}.", Path.GetFileName(r.Parquet));
            Assert.StartsWith(Path.Combine(Lab, "alumet", "data", "jobs", $"cluster={Cluster}") + "/", r.Parquet);
        }

        // Each node's one sampler measured its own counter (its config, selected by SLURMD_NODENAME): n1 at 50 W, n2 at
        // 80 W, and split every period between that node's jobs only: node = Σ jobs + unattributed, exactly.
        foreach (string n in NodeNames)
        {
            string[] here = rows.Where(r => r.Node == n).Select(r => $"job:{r.JobId}").Order().ToArray();
            string file = NodeFileAfter(n, rows.Min(r => r.Start));
            string periods = $"timestamp IN (SELECT timestamp FROM read_parquet('{file}') WHERE consumer IN ({string.Join(", ", here.Select(c => $"'{c}'"))}))";
            Assert.Equal(0L, Convert.ToInt64(DuckScalar($"""
                SELECT count(*) FROM (SELECT timestamp, domain, sum(CASE WHEN consumer = 'node' THEN energy_raw ELSE 0 END) AS whole,
                                             sum(CASE WHEN consumer <> 'node' THEN energy_raw ELSE 0 END) AS parts
                                      FROM read_parquet('{file}') WHERE {periods} GROUP BY ALL) WHERE whole <> parts
                """), CultureInfo.InvariantCulture));
            Assert.Equal(here, DuckColumn($"SELECT DISTINCT consumer FROM read_parquet('{file}') WHERE {periods} AND consumer LIKE 'job:%' ORDER BY 1"));
            double joules = Convert.ToDouble(DuckScalar($"SELECT sum(energy_raw * joules_per_unit) FROM read_parquet('{file}') WHERE {periods} AND consumer = 'node' AND resource_kind = 'cpu_package'"), CultureInfo.InvariantCulture);
            double seconds = Convert.ToDouble(DuckScalar($"SELECT sum(interval_us) / 1e6 FROM read_parquet('{file}') WHERE {periods} AND consumer = 'node' AND resource_kind = 'cpu_package'"), CultureInfo.InvariantCulture);
            Assert.InRange(joules, NodePowerW[n] * seconds * 0.9 - 1, NodePowerW[n] * seconds * 1.1 + 1);
        }

        // The report, run by the job's user through the gate (read-only role): job lines, then the node lines.
        var jobLines = RunAs($"{Lab}/bin/alumet-report", "-j", $"{both},{on1},{on2}", "-X", "-P", "-n", "-o", "JobID,NodeList,NNodes,Status");
        Assert.Equal((0, $"{both}|n[1-2]|2|complete\n{on1}|n1|1|complete\n{on2}|n2|1|complete\n"), (jobLines.Code, jobLines.Out));
        var withNodes = RunAs($"{Lab}/bin/alumet-report", "-j", both, "-P", "-n", "-o", "JobID,NodeList,NNodes");
        Assert.Equal(0, withNodes.Code);
        Assert.Equal([$"{both}|n[1-2]|2", $"{both}|n1|1", $"{both}|n2|1"], withNodes.Out.Split('\n').Where(l => l.Length > 0 && !l.StartsWith(both + ".", StringComparison.Ordinal)));

        // The job line is the sum of its node rows, exactly (per domain, then package + DRAM + GPU; JSON keeps 6 decimals).
        var json = RunAs($"{Lab}/bin/alumet-report", "-j", both, "--json");
        Assert.Equal(0, json.Code);
        var job = JsonDocument.Parse(json.Out).RootElement.GetProperty("jobs")[0];
        var nodeRows = rows.Where(r => r.JobId == both).OrderBy(r => r.Node).ToList();
        double sum = nodeRows.Sum(r => r.PackageJ) + nodeRows.Sum(r => r.DramJ) + nodeRows.Sum(r => r.GpuJ);
        Assert.Equal(Math.Round(sum, 6), job.GetProperty("energy").GetProperty("total").GetDouble());
        Assert.Equal(Math.Round(nodeRows.Sum(r => r.PackageJ), 6), job.GetProperty("energy").GetProperty("package").GetDouble());
        var nodeLines = job.GetProperty("node_lines").EnumerateArray().ToList();
        Assert.Equal(["n1", "n2"], nodeLines.Select(n => n.GetProperty("node").GetString()));
        for (int i = 0; i < 2; i++)
            Assert.Equal(Math.Round(nodeRows[i].TotalJ, 6), nodeLines[i].GetProperty("energy").GetProperty("total").GetDouble());
        Assert.Equal("n1 idle\nn2 idle", NodeStates());

        // Then a 2-node job alone on both nodes: each node measured its own counter (its config, chosen by
        // SLURMD_NODENAME): n1 at 50 W, n2 at 80 W; job + other jobs + unattributed = node in each row.
        string alone = Sbatch(["-N2", "--ntasks-per-node=1"], $"srun {Busy(3)}");
        WaitDone(alone);
        foreach (var r in WaitRows(new() { [alone] = ["n1", "n2"] }))
        {
            AssertCompleteMeasurement(r);
            double w = NodePowerW[r.Node];
            Assert.InRange(r.NodeJ, w * r.ElapsedS * 0.9 - 1, w * r.ElapsedS * 1.1 + 1);
            Assert.Equal(r.NodeJ, r.TotalJ + r.OtherJ + r.UnattributedJ, 1e-5);
        }
    }

    [SkippableFact]
    public void PostgresStoppedFor30SecondsMidRunLosesNoRow()
    {
        RequireLab();
        var logStart = NodeNames.ToDictionary(n => n, n => File.Exists(HookLog(n)) ? new FileInfo(HookLog(n)).Length : 0);
        // Jobs start while the server is up and end while it is down; one more starts and ends while it is down.
        string both = Sbatch(["-N2", "--ntasks-per-node=1"], $"srun {Busy(6)}");
        string on1 = Sbatch(["-N1", "-w", "n1"], Busy(6));
        string on2 = Sbatch(["-N1", "-w", "n2"], Busy(6));
        WaitRunning(both, on1, on2);
        var down = Stopwatch.StartNew();
        PgLab("stop");
        try
        {
            string whileDown = Sbatch(["-N2", "--ntasks-per-node=1"], $"srun {Busy(2)}");
            WaitDone(both, on1, on2, whileDown);
            Assert.True(down.Elapsed < TimeSpan.FromSeconds(30), $"the jobs took {down.Elapsed.TotalSeconds:0} s: longer than the outage");
            // Every row waits in its node's outbox (durable, node-local): n1 holds both, on1, whileDown; n2 both, on2, whileDown.
            Assert.Equal(3, OutboxOf(Cfg("n1")).Pending().Count);
            Assert.Equal(3, OutboxOf(Cfg("n2")).Pending().Count);
            Assert.Equal("n1 idle\nn2 idle", NodeStates()); // no hook failed the node
            // A user's report meanwhile: one sentence, exit 1 (sacct's "database unreachable").
            var report = RunAs($"{Lab}/bin/alumet-report", "-j", both, "-P", "-n");
            Assert.Equal((1, "", $"alumet-report: error: cannot read the accounting database: PostgreSQL server not running at "
                + $"{ReportUrl} (ConnectionRefused): try again later, or ask an administrator\n"), report);
            Thread.Sleep(TimeSpan.FromSeconds(30) - down.Elapsed);

            PgLab("start");
            down.Stop();
            // A later job's hooks drain the outboxes (the samplers' background retries may get there first).
            string after = Sbatch(["-N2", "--ntasks-per-node=1"], "true");
            WaitDone(after);
            var rows = WaitRows(new()
            {
                [both] = ["n1", "n2"], [on1] = ["n1"], [on2] = ["n2"], [whileDown] = ["n1", "n2"], [after] = ["n1", "n2"],
            });
            // The rows have the status and reason of the measurement, not of the outage.
            foreach (var r in rows) AssertCompleteMeasurement(r);
            foreach (var n in NodeNames)
            {
                Assert.Empty(OutboxOf(Cfg(n)).Pending());
                var flush = Run(Bin, "db", "flush", "--config", Cfg(n));
                Assert.Equal((0, $"0 row(s) stored in {TestBackends.PgUrl}; 0 left in {Path.Combine(Lab, "nodes", n, "state", "outbox")}\n"), (flush.Code, flush.Out));
            }

            // The hooks: every prolog and epilog of these jobs within its bound (hook_wait_s 2 s + one statement's 1 s),
            // and the rows of the outage went through the outbox, with the true reason in the log.
            foreach (var n in NodeNames)
            {
                var lines = LogSince(n, logStart[n]);
                var hooks = lines.Select(l => Regex.Match(l, @"slurm (prolog|epilog) job (\d+) on (n\d): .*\((\d+\.\d) ms\)$")).Where(m => m.Success).ToList();
                var jobsHere = n == "n1" ? new[] { both, on1, whileDown, after } : [both, on2, whileDown, after];
                foreach (var id in jobsHere)
                    foreach (var kind in new[] { "prolog", "epilog" })
                    {
                        var m = hooks.FirstOrDefault(h => h.Groups[1].Value == kind && h.Groups[2].Value == id);
                        Assert.True(m is not null, $"no {kind} line for job {id} in {HookLog(n)}");
                        double ms = double.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture);
                        Assert.True(ms <= 3000, $"{kind} of job {id} on {n} took {ms} ms (bound: hook_wait_s 2 s + 1 s)");
                    }
                Assert.Contains(lines, l => l.Contains($"job {both}: ") && l.Contains("complete") && l.Contains("row queued in")
                    && l.Contains($"(PostgreSQL server not running at {TestBackends.PgUrl} (ConnectionRefused)"));
                Assert.DoesNotContain(lines, l => l.Contains("sampler died"));
            }
        }
        finally
        {
            PgLab("start"); // idempotent: never leave the server down for the tests after this one
        }
    }

    // ------------------------------------------------------------------------------------------ lab

    private static readonly string[] NodeNames = ["n1", "n2"];
    private static string ReportUrl => Environment.GetEnvironmentVariable("ALUMET_TEST_PG_REPORT_URL") ?? "";
    private static string Cfg(string node) => Path.Combine(Lab, "nodes", node, "alumet.toml");
    private static string HookLog(string node) => Path.Combine(Lab, "log", $"alumet-hpc.{node}.log");
    private static Outbox OutboxOf(string config) => Outbox.Of(Alumet.Hpc.Config.ConfigLoader.LoadFile(config));

    private static List<string> LogSince(string node, long offset)
    {
        using var f = new FileStream(HookLog(node), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        f.Seek(offset, SeekOrigin.Begin);
        return new StreamReader(f).ReadToEnd().Split('\n').ToList();
    }

    private static void PgLab(string verb)
    {
        var r = Run("bash", Path.Combine(RepoRoot(), "tests", "e2e", "postgres", "pg-lab.sh"), verb);
        Assert.True(r.Code == 0, $"pg-lab.sh {verb} failed: {r.Out}{r.Err}");
    }

    /// <summary>The node's root-only file of the day (README "The node sampler"), once its sampler has exited and
    /// rewritten it after <paramref name="since"/>.</summary>
    private static string NodeFileAfter(string node, DateTime since)
    {
        string file = Path.Combine(Lab, "alumet", "data", Cluster, "node", node, $"{node}.{since:yyyy-MM-dd}.parquet");
        Until(() => File.Exists(file) && File.GetLastWriteTimeUtc(file) > since.ToUniversalTime().AddSeconds(2), 20, $"{file} rewritten by the node sampler's exit");
        return file;
    }

    private static object DuckScalar(string sql)
    {
        using var con = new DuckDB.NET.Data.DuckDBConnection("Data Source=:memory:");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar()!;
    }

    private static List<string> DuckColumn(string sql)
    {
        using var con = new DuckDB.NET.Data.DuckDBConnection("Data Source=:memory:");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = sql;
        using var rd = cmd.ExecuteReader();
        var list = new List<string>();
        while (rd.Read()) list.Add(rd.GetString(0));
        return list;
    }

    private static string NodeStates() => Run("sinfo", "-h", "-N", "-o", "%N %T").Out.Trim();

    private static string Sbatch(string[] options, string script)
    {
        var r = RunAs("sbatch", ["--parsable", "-o", "/dev/null", .. options, "--wrap", script]);
        Assert.True(r.Code == 0, $"sbatch failed: {r.Err}");
        return r.Out.Trim().Split(';')[0];
    }

    private static string Queue(string[] ids) => Run("squeue", "-h", "-j", string.Join(',', ids), "-o", "%i %T").Out.Trim();

    private static void WaitRunning(params string[] ids) =>
        Until(() => Queue(ids).Split('\n').Count(l => l.EndsWith(" RUNNING", StringComparison.Ordinal)) == ids.Length, 30, $"jobs {string.Join(',', ids)} running");

    /// <summary>Until the jobs have left the queue (after their epilogs: a job stays COMPLETING until they end).</summary>
    private static void WaitDone(params string[] ids) => Until(() => Queue(ids).Length == 0, 60, $"jobs {string.Join(',', ids)} done");

    private static void Until(Func<bool> done, double timeoutS, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutS);
        while (!done())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timeout ({timeoutS} s) waiting for {what}");
            Thread.Sleep(200);
        }
    }

    // ------------------------------------------------------------------------------------------ rows

    /// <summary>
    /// Complete, and no reason but the one Slurm 22.05's cgroup removal may give: jobs of one user that end in the same
    /// period lose their cgroups before their epilogs, and what they used since the read before is then not theirs
    /// (README "Attribution", flags=8); the row says their energy is a lower bound (SnapshotSplitTests).
    /// </summary>
    private static void AssertCompleteMeasurement(Row r)
    {
        Assert.True(r.Status == "complete" && (r.Reason.Length == 0 || System.Text.RegularExpressions.Regex.IsMatch(r.Reason,
            @"^the job's cgroup was removed before its end: [0-9]+ period\(s\) of its share miss its CPU time since the read before \(that energy is in unattributed\): energy is a lower bound$")),
            $"job {r.JobId} on {r.Node}: {r.Status} ({r.Reason})");
    }

    private sealed record Row(string JobId, string Node, string Status, string Reason, DateTime Start, DateTime End, double ElapsedS,
        double PackageJ, double DramJ, double GpuJ, double TotalJ, double NodeJ, double OtherJ, double UnattributedJ, string Parquet);

    /// <summary>Waits (up to 40 s) until each job has exactly the expected nodes' rows in the server; returns them.</summary>
    private static List<Row> WaitRows(Dictionary<string, string[]> expected)
    {
        List<Row> rows = [];
        string Seen() => string.Join("; ", expected.Keys.Select(j => $"{j}: {string.Join(',', rows.Where(r => r.JobId == j).Select(r => r.Node))}"));
        bool Complete() => expected.All(e => rows.Where(r => r.JobId == e.Key).Select(r => r.Node).Order().SequenceEqual(e.Value));
        var deadline = DateTime.UtcNow.AddSeconds(40);
        while (true)
        {
            rows = Query(expected.Keys.ToArray());
            if (Complete() || DateTime.UtcNow > deadline) break;
            Thread.Sleep(500);
        }
        Assert.True(Complete(), $"rows by job and node: {Seen()} (expected one row per node of each job)");
        return rows;
    }

    private static List<Row> Query(string[] jobIds)
    {
        var url = DatabaseUrl.TryParse(TestBackends.PgUrl!, TestBackends.PgPasswordFile, out string? error) ?? throw new InvalidOperationException(error);
        using var con = new NpgsqlConnection(url.ConnectionString(5));
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = """
            SELECT job_id, node, status, reason, start_time, end_time, elapsed_s, energy_package_j, energy_dram_j, energy_gpu_j,
                   total_energy_j, node_energy_j, other_jobs_energy_j, unattributed_energy_j, parquet_path
            FROM jobs WHERE cluster = @c AND scheduler = 'slurm' AND job_id = ANY(@j) ORDER BY job_id, node;
            """;
        cmd.Parameters.AddWithValue("c", Cluster);
        cmd.Parameters.AddWithValue("j", jobIds);
        using var rd = cmd.ExecuteReader();
        var rows = new List<Row>();
        while (rd.Read())
            rows.Add(new Row(rd.GetString(0), rd.GetString(1), rd.GetString(2), rd.IsDBNull(3) ? "" : rd.GetString(3),
                JobRecord.ParseTime(rd.GetString(4))!.Value, JobRecord.ParseTime(rd.GetString(5))!.Value, rd.GetDouble(6), rd.GetDouble(7), rd.GetDouble(8),
                rd.GetDouble(9), rd.GetDouble(10), rd.GetDouble(11), rd.GetDouble(12), rd.GetDouble(13), rd.GetString(14)));
        return rows;
    }

    // ------------------------------------------------------------------------------------------ processes

    private static (int Code, string Out, string Err) RunAs(string file, params string[] args) =>
        Run("runuser", ["-u", User, "--", file, .. args], Path.Combine(Lab, "out"));

    private static (int Code, string Out, string Err) Run(string file, params string[] args) => Run(file, args, "/");

    private static (int Code, string Out, string Err) Run(string file, string[] args, string cwd)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = cwd };
        psi.Environment["SLURM_CONF"] = Path.Combine(Lab, "etc", "slurm.conf"); // this lab's, whatever the single-node lab exported
        psi.Environment["PG_LAB"] = PgLabDir;
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }

    private static string RepoRoot([System.Runtime.CompilerServices.CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", "..", ".."));
}
