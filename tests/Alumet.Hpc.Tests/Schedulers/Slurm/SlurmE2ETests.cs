using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using DuckDB.NET.Data;
using Microsoft.Data.Sqlite;

namespace Alumet.Hpc.Tests.Schedulers.Slurm;

/// <summary>
/// End-to-end on a real Slurm (tests/e2e/slurm/slurm-lab.sh start): jobs submitted by an ordinary user run
/// the project's Prolog/Epilog with the published binary, on a generated powercap tree (package-0 at
/// FAKE_POWER_W), the real cgroups and two fake GPUs (GRES gpu:2 on /dev/nvidia[0-1], a scripted fake
/// libnvidia-ml.so.1 whose NVML index order is the reverse of the minor numbers). Skipped unless
/// ALUMET_E2E_SLURM=1; with it set, a lab that is not up is a failure, not a skip. Sequential (one class):
/// jobs compete for the node's 2 CPUs.
/// </summary>

[Collection(SchedulerE2ECollection.Name)]
public sealed class SlurmE2ETests
{
    private const double FakePowerW = 50;
    // The lab's defaults (LAB_GPUS=2, FAKE_GPU_POWER_W="100 250"), by Slurm GPU index N (position in gres.conf's
    // File=/dev/nvidia[0-1], so /dev/nvidiaN; NVML's own index order is the reverse in the lab): power and
    // the PCI bus id the lab's fake NVML gives that minor number (resource id of its gpu series).
    private static readonly double[] FakeGpuPowerW = { 100, 250 };
    private static readonly string[] FakeGpuBusIds = { "0000:3b:00.0", "0000:5b:00.0" };
    private const string CpuKinds = "'cpu_package','dram'";
    private static readonly bool Enabled = Environment.GetEnvironmentVariable("ALUMET_E2E_SLURM") == "1";
    private static readonly string Lab = Environment.GetEnvironmentVariable("ALUMET_E2E_SLURM_LAB") ?? "/var/lib/alumet-hpc-e2e/slurm";
    private static readonly string User = Environment.GetEnvironmentVariable("ALUMET_E2E_SLURM_USER") ?? "alumetuser";
    private static readonly string Bin = Environment.GetEnvironmentVariable("ALUMET_HPC_BIN") ?? Path.Combine(RepoRoot(), "out", "bin", "alumet-hpc");
    private static string Config => Path.Combine(Lab, "alumet.toml");
    private static string DataDir => Path.Combine(Lab, "alumet", "data");
    private static string StateDir => Path.Combine(Lab, "alumet", "state", "slurm");
    private static string Database => Path.Combine(Lab, "alumet", "accounting.db");
    private static string HookLog => Path.Combine(Lab, "log", "alumet-hpc.log");
    // Only this run's hook log lines count for timings (the lab's log outlives test runs).
    private static readonly long HookLogStart = File.Exists(HookLog) ? new FileInfo(HookLog).Length : 0;

    private static void RequireLab()
    {
        Skip.IfNot(Enabled, "set ALUMET_E2E_SLURM=1 (after tests/e2e/slurm/slurm-lab.sh start) to run the Slurm end-to-end tests");
        Assert.True(File.Exists(Bin), $"{Bin} missing: run 'make publish'");
        var ping = Run("scontrol", "ping");
        Assert.True(ping.Code == 0 && ping.Out.Contains("UP"), $"Slurm lab is not up (scontrol ping: {ping.Out}{ping.Err}): run tests/e2e/slurm/slurm-lab.sh start");
        Assert.Equal("idle", NodeState());
    }

    [SkippableFact]
    public void SrunJobProducesParquetRowAndReport()
    {
        RequireLab();
        var r = RunAs("srun", "-n1", "bash", "-c", "echo $SLURM_JOB_ID; sleep 2");
        Assert.True(r.Code == 0, $"srun failed: {r.Err}");
        string id = r.Out.Trim();
        WaitJobDone(id);

        AssertMeasuredJob(id, minSeconds: 2);
        AssertNoSampler(id);
        Assert.Equal("idle", NodeState());
    }

    [SkippableFact]
    public void SbatchJobProducesParquetRowAndReport()
    {
        RequireLab();
        string id = Sbatch("sleep 2");
        WaitJobDone(id);

        AssertMeasuredJob(id, minSeconds: 2);
        Assert.Equal("COMPLETED", JobState(id));
        AssertNoSampler(id);
    }

    [SkippableFact]
    public void GpuJobGetsItsGpuEnergyAndTheOtherGpuIsUnattributed()
    {
        RequireLab();
        // The prolog learns the GPU from SLURM_JOB_GPUS (Slurm's index N = /dev/nvidiaN); the job prints what it got.
        var r = RunAs("srun", "-n1", "--gres=gpu:1", "bash", "-c", "echo $SLURM_JOB_ID ${SLURM_JOB_GPUS:-$SLURM_STEP_GPUS}; sleep 3");
        Assert.True(r.Code == 0, $"srun failed: {r.Err}");
        string[] printed = r.Out.Trim().Split(' ');
        Assert.True(printed.Length == 2, $"srun printed '{r.Out.Trim()}' (expected: job id and one GPU index)");
        string id = printed[0];
        int gpu = int.Parse(printed[1], CultureInfo.InvariantCulture);
        WaitJobDone(id);

        var row = AssertMeasuredJob(id, minSeconds: 3, gpu);
        // Its GPU's whole energy, at that GPU's power (not the other's: NVML index 0 is /dev/nvidia1 in the lab).
        Assert.InRange(row.GpuJ, FakeGpuPowerW[gpu] * row.ElapsedS * 0.9 - 1, FakeGpuPowerW[gpu] * row.ElapsedS * 1.1 + 1);
        // The report, run by the user, shows the row's numbers.
        var report = Report(id);
        Assert.Equal(row.GpuJ, report.GpuJ, 1e-5); // 10 µJ: rounding both to 5 places failed when they straddled a .5
        Assert.Equal(row.JobJ, report.TotalJ, 1e-5); // 10 µJ: rounding both to 5 places failed when they straddled a .5
        Assert.Equal(row.JobJ, row.PackageJ + row.DramJ + row.GpuJ, 1e-5); // 10 µJ: rounding both to 5 places failed when they straddled a .5
        AssertNoSampler(id);
    }

    [SkippableFact]
    public void TwoGpuJobsEachGetTheirOwnGpu()
    {
        RequireLab();
        // Concurrent: the second job gets the other GPU, so both index -> minor number -> bus id mappings are used.
        const string script = "echo ${SLURM_JOB_GPUS:-none} > gpus.$SLURM_JOB_ID; sleep 3";
        string a = Sbatch(script, "--gres=gpu:1");
        string b = Sbatch(script, "--gres=gpu:1");
        WaitJobDone(a);
        WaitJobDone(b);

        var gpus = new[] { a, b }.Select(id => File.ReadAllText(Path.Combine(Lab, "out", $"gpus.{id}")).Trim()).ToArray();
        Assert.Equal(new[] { "0", "1" }, gpus.Order().ToArray());
        AssertNoSampler(""); // gone: the node file of the day now holds both jobs
        string nodeFile = NodeFile();
        foreach (var (id, g) in new[] { (a, gpus[0]), (b, gpus[1]) })
        {
            int gpu = int.Parse(g, CultureInfo.InvariantCulture);
            // The two jobs shared the node: each file holds its own share; node series only while it was alone.
            var row = Row(id);
            Assert.True(row.Status == "complete", $"job {id}: {row.Status} ({row.Reason})");
            AssertOwnSeriesOrAlone(id, row.ParquetPath, nodeFile);
            var sums = GpuSums(row.ParquetPath, id);
            // The job's share: its GPU only (the node/unattributed series of the periods it was alone cover both GPUs).
            Assert.Equal(new[] { (FakeGpuBusIds[gpu], $"job:{id}") }, sums.Where(kv => kv.Value > 0 && kv.Key.Consumer == $"job:{id}").Select(kv => kv.Key).ToArray());
            Assert.InRange(row.GpuJ, FakeGpuPowerW[gpu] * row.ElapsedS * 0.9 - 1, FakeGpuPowerW[gpu] * row.ElapsedS * 1.1 + 1);
            File.Delete(Path.Combine(Lab, "out", $"gpus.{id}"));
            AssertNoSampler(id);
        }
    }

    [SkippableFact]
    public void JobWithoutGresGetsNoGpuEnergy()
    {
        RequireLab();
        string id = Sbatch("echo ${SLURM_JOB_GPUS:-none} > gpus.$SLURM_JOB_ID; sleep 2");
        WaitJobDone(id);

        string gpusFile = Path.Combine(Lab, "out", $"gpus.{id}");
        Assert.Equal("none", File.ReadAllText(gpusFile).Trim());
        File.Delete(gpusFile);
        // AssertMeasuredJob checks that both GPUs ran (node) and that all of it went to unattributed.
        var row = AssertMeasuredJob(id, minSeconds: 2, gpu: null);
        Assert.Equal(0.0, row.GpuJ);
        Assert.Equal(0.0, Report(id).GpuJ);
        Assert.Equal("COMPLETED", JobState(id));
    }

    [SkippableFact]
    public void ReportPrintsTheJobForItsUser()
    {
        RequireLab();
        string id = Sbatch("sleep 1");
        WaitJobDone(id);
        Assert.Equal("complete", Row(id).Status);
        // alumet-report is the setgid gate the lab builds in $LAB/bin for its own config, as README installs it:
        // the user reads the 0640 database through it, without --config (which would give the group up).
        var report = RunAs(Path.Combine(Lab, "bin", "alumet-report"), "--job", id);
        Assert.True(report.Code == 0, $"alumet-report --job {id} (as {User}): exit {report.Code}: {report.Err}");
        Assert.Contains(id, report.Out);
        Assert.Contains(NodeName(), report.Out);
    }

    [SkippableFact]
    public void EightConcurrentJobsRunWithOneSamplerAndEveryIntervalConserves()
    {
        RequireLab();
        // 4 busy and 4 idle jobs share the node's 2 cores (the lab partition forces sharing, up to 8 jobs per core).
        var busy = Enumerable.Range(0, 4).Select(_ => Sbatch("timeout 6 bash -c 'while :; do :; done'; true")).ToList();
        var idle = Enumerable.Range(0, 4).Select(_ => Sbatch("sleep 6")).ToList();
        var all = busy.Concat(idle).ToList();
        var samplers = new HashSet<int>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && !all.All(j => JobState(j) == "RUNNING")) Thread.Sleep(100);
        Assert.True(all.All(j => JobState(j) == "RUNNING"), "the 8 jobs did not all run at once: " + string.Join(", ", all.Select(JobState)));
        for (int i = 0; i < 10; i++) { foreach (int p in NodeSamplerPids()) samplers.Add(p); Thread.Sleep(300); }
        Assert.Single(samplers); // one sampling process for the 8 jobs
        foreach (string j in all) WaitJobDone(j);

        var rows = all.ToDictionary(j => j, Row);
        Assert.All(rows.Values, r => Assert.Equal("complete", r.Status));
        double busyMin = busy.Min(j => rows[j].JobJ), idleMax = idle.Max(j => rows[j].JobJ);
        Assert.True(busyMin > 5 * idleMax, $"busy jobs' shares {string.Join(", ", busy.Select(j => rows[j].JobJ.ToString("F2")))} J should be >> idle ones' {string.Join(", ", idle.Select(j => rows[j].JobJ.ToString("F2")))} J");
        AssertNoSampler("");
        string nodeFile = NodeFile();
        foreach (string j in all)
        {
            // The user's file holds the job's own share; the node's series only for periods it was alone.
            AssertOwnSeriesOrAlone(j, rows[j].ParquetPath, nodeFile);
            Assert.True(rows[j].JobJ > 0, $"job {j}: no energy");
        }
        // The node file (root-only): per interval and domain, node = Σ jobs + unattributed, every job's series is the
        // one in its own file, the first second of every job is attributed.
        Assert.Equal("700", Run("stat", "-c", "%a", Path.GetDirectoryName(nodeFile)!).Out.Trim());
        Assert.NotEqual(0, Run("runuser", "-u", User, "--", "head", "-c", "4", nodeFile).Code);
        Assert.Equal(0L, Scalar($"""
            SELECT count(*) FROM (SELECT timestamp, resource_kind, resource_id,
                     sum(CASE WHEN consumer = 'node' THEN energy_raw ELSE 0 END) AS n, sum(CASE WHEN consumer <> 'node' THEN energy_raw ELSE 0 END) AS parts
                   FROM read_parquet('{nodeFile}')
                   -- this test's periods (the day's file also holds earlier tests' jobs, raw-rate node reads among them)
                   WHERE timestamp IN (SELECT timestamp FROM read_parquet('{nodeFile}') WHERE consumer IN ({string.Join(", ", all.Select(j => $"'job:{j}'"))}))
                   GROUP BY ALL) WHERE n <> parts
            """));
        // The admin's tool on every job file and the whole node file of the day: exact on energy_raw wherever a file holds
        // the split (the node file; a job alone for some periods), "unchecked" where it holds only its own share.
        var check = Run(Bin, ["parquet", "check", nodeFile, .. all.Select(j => rows[j].ParquetPath)]);
        Assert.True(check.Code == 0, $"alumet-hpc parquet check: exit {check.Code}: {check.Out}{check.Err}");
        Assert.StartsWith($"ok: {nodeFile}: ", check.Out);
        Assert.Contains("9 file(s): ", check.Out);
        Assert.Contains(" 0 violate, ", check.Out);
        foreach (string j in all)
        {
            Assert.Equal(0L, Scalar($"""
                SELECT count(*) FROM (SELECT * FROM read_parquet('{rows[j].ParquetPath}') WHERE consumer = 'job:{j}') f
                FULL JOIN (SELECT * FROM read_parquet('{nodeFile}') WHERE consumer = 'job:{j}') n USING (timestamp, resource_kind, resource_id)
                WHERE f.energy_raw IS DISTINCT FROM n.energy_raw
                """));
        }
        // A busy job's first seconds are attributed to it, not left to "unattributed" (the first period exactly:
        // NodeSamplerTests.TheFirstPeriodIsAttributed). On a real node its loop starts when slurmstepd has set the job up,
        // which with 8 jobs starting at once on 2 CPUs was 1.5 s after the prolog registered it (a busy job's first second
        // read 1.275 J, idle jobs' up to 0.747 J), and its share shrinks with whatever else runs (CI beside other builds:
        // 1.45 J in the first second at load 20). So its first 3 s (the periods whose start is within 3 s of its first)
        // are compared with the idle jobs' first 3 s, which shrink alike.
        double FirstSeconds(string j) => Convert.ToDouble(ScalarObj($"""
            SELECT coalesce(sum(energy_raw * joules_per_unit), 0) FROM read_parquet('{rows[j].ParquetPath}') WHERE resource_kind = 'cpu_package' AND consumer = 'job:{j}'
              AND timestamp < (SELECT min(timestamp) FROM read_parquet('{rows[j].ParquetPath}')) + INTERVAL 3 SECOND
            """), CultureInfo.InvariantCulture);
        double idleFirst = idle.Max(FirstSeconds);
        foreach (string j in busy)
        {
            double first = FirstSeconds(j);
            Assert.True(first > 1 && first > 3 * idleFirst, $"job {j}: {first:F3} J in its first 3 s (idle jobs at most {idleFirst:F3} J)");
        }
        Assert.Equal("idle", NodeState());
    }

    /// <summary>
    /// <c>alumet-hpc exec</c> as root beside a busy Slurm job: one node sampler for both, the command in its own real
    /// cgroup, the node split between them by CPU time and counted once (every interval of the node file conserves).
    /// </summary>
    [SkippableFact]
    public void ExecBesideASlurmJobGoesThroughTheSameSamplerAndTheNodeIsCountedOnce()
    {
        RequireLab();
        string slurm = Sbatch("timeout 9 bash -c 'while :; do :; done'; true");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline && JobState(slurm) != "RUNNING") Thread.Sleep(100);
        int sampler = WaitSamplerPid(slurm);
        string exec = NewExecId();
        var run = Run(Bin, "exec", "--config", Config, "--job-id", exec, "--no-report", "--",
            "bash", "-c", "end=$((SECONDS+4)); while [ $SECONDS -lt $end ]; do :; done; grep -c /alumet/exec_ /proc/self/cgroup");
        Assert.True(run.Code == 0, run.Err);
        Assert.Equal("1", run.Out.Trim()); // the command ran in its own cgroup (one hierarchy)
        Assert.Equal([sampler], NodeSamplerPids()); // the Slurm job's sampler did both: exec started none
        WaitJobDone(slurm);
        AssertNoSampler(slurm);

        using var con = new SqliteConnection($"Data Source={Database};Mode=ReadOnly");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = "SELECT status, reason, attribution_mode, node, total_energy_j, parquet_path FROM jobs WHERE scheduler = 'exec' AND job_id = $id";
        cmd.Parameters.AddWithValue("$id", exec);
        using var rd = cmd.ExecuteReader();
        Assert.True(rd.Read(), $"no row for exec job {exec}");
        Assert.Equal(("complete", "", "cgroup-cpu-time", NodeName()), (rd.GetString(0), rd.GetString(1), rd.GetString(2), rd.GetString(3)));
        double execJ = rd.GetDouble(4);
        string parquet = rd.GetString(5);
        // Two busy processes on two cores: the exec's share of 4 s at 50 W is about half of the node (less on a machine
        // loaded by other work, whose CPU time counts in the node's busy time), far from all of it.
        Assert.InRange(execJ, 0.1 * FakePowerW * 4, 0.75 * FakePowerW * 4.5);
        string nodeFile = NodeFile();
        AssertOwnSeriesOrAlone(exec, parquet, nodeFile);
        AssertOwnSeriesOrAlone(slurm, Row(slurm).ParquetPath, nodeFile);
        Assert.Equal(0L, Scalar($"""
            SELECT count(*) FROM (SELECT timestamp, resource_kind, resource_id,
                     sum(CASE WHEN consumer = 'node' THEN energy_raw ELSE 0 END) AS n, sum(CASE WHEN consumer <> 'node' THEN energy_raw ELSE 0 END) AS parts
                   FROM read_parquet('{nodeFile}')
                   WHERE timestamp IN (SELECT timestamp FROM read_parquet('{nodeFile}') WHERE consumer IN ('job:{exec}', 'job:{slurm}'))
                   GROUP BY ALL) WHERE n <> parts
            """));
        Assert.Equal(0L, Scalar($"""
            SELECT count(*) FROM (SELECT * FROM read_parquet('{parquet}') WHERE consumer = 'job:{exec}') f
            FULL JOIN (SELECT * FROM read_parquet('{nodeFile}') WHERE consumer = 'job:{exec}') n USING (timestamp, resource_kind, resource_id)
            WHERE f.energy_raw IS DISTINCT FROM n.energy_raw
            """));
        Assert.False(Directory.Exists(Path.Combine(Alumet.Hpc.Attribution.ExecCgroup.Hierarchy("/sys/fs/cgroup")!.Value.Hierarchy, "alumet", "exec_" + exec)), "exec removed its cgroup");
        Assert.Equal("idle", NodeState());
    }

    [SkippableFact]
    public void AJobCommentAskingForRawStorageGetsEveryRead()
    {
        RequireLab();
        // Slurm 22.05 gives the prolog the job's comment (SLURM_JOB_COMMENT), not --profile/--acctg-freq.
        string raw = Sbatch("sleep 3", "--comment=campaign-7 alumet:raw");
        WaitJobDone(raw);
        string plain = Sbatch("sleep 3");
        WaitJobDone(plain);
        using var con = new SqliteConnection($"Data Source={Database};Mode=ReadOnly");
        con.Open();
        long Period(string id)
        {
            using var cmd = con.CreateCommand();
            cmd.CommandText = "SELECT storage_period_ms FROM jobs WHERE scheduler = 'slurm' AND job_id = $id";
            cmd.Parameters.AddWithValue("$id", id);
            return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
        }
        Assert.Equal(0L, Period(raw));     // every read stored
        Assert.Equal(1000L, Period(plain)); // the lab's storage_period_ms
        Assert.Equal("complete", Row(raw).Status);
        Assert.Contains(HookLogSince(HookLogStart), l => l.Contains($"slurm prolog job {raw} on ") && l.Contains(", raw storage)"));
        AssertNoSampler(plain);
    }

    [SkippableFact]
    public void KillMinus9OfTheNodeSamplerKeepsFlushedDataAndTheNextJobStartsANewOne()
    {
        RequireLab();
        var jobs = Enumerable.Range(0, 3).Select(_ => Sbatch("sleep 6")).ToList();
        int pid = WaitSamplerPid(jobs[0]);
        foreach (string j in jobs) WaitSamplerPid(j);
        Thread.Sleep(2500); // past a storage period and a flush: the spools hold data
        Assert.Equal(0, Run("kill", "-9", pid.ToString(CultureInfo.InvariantCulture)).Code);
        string next = Sbatch("sleep 3"); // its prolog finds no sampler: starts a new one
        int second = WaitSamplerPid(next);
        Assert.NotEqual(pid, second);
        foreach (string j in jobs.Append(next)) WaitJobDone(j);
        foreach (string j in jobs)
        {
            var row = Row(j);
            Assert.Equal("partial", row.Status); // recovered by the new sampler: the gap is said
            Assert.True(row.JobJ > 0, $"job {j}: flushed data kept");
        }
        Assert.Equal("complete", Row(next).Status);
        Assert.Equal("idle", NodeState());
        AssertNoSampler(next);
    }

    [SkippableFact]
    public void KilledSamplerLeavesTheNodeIdleAndTheJobCompleted()
    {
        RequireLab();
        string id = Sbatch("sleep 5");
        int pid = WaitSamplerPid(id);
        Thread.Sleep(2500); // past a storage period and a flush: the spool holds data
        Assert.Equal(0, Run("kill", "-9", pid.ToString(CultureInfo.InvariantCulture)).Code);
        WaitJobDone(id);

        Assert.Equal("COMPLETED", JobState(id));
        Assert.Equal("idle", NodeState());
        var row = Row(id);
        Assert.Equal("partial", row.Status);
        AssertNoSampler(id);
    }

    [SkippableFact]
    public void HungSamplerMakesTheEpilogFinalizeFromTheSpoolAfterTheStopTimeout()
    {
        RequireLab();
        string id = Sbatch("sleep 4");
        int pid = WaitSamplerPid(id);
        Thread.Sleep(2500); // some data flushed first
        // SIGSTOP: alive but deaf to the epilog's request. The epilog must give up after stop_timeout_s (5 s in
        // the lab config) and finalize from the spool, so the node does not sit in "completing".
        Assert.Equal(0, Run("kill", "-STOP", pid.ToString(CultureInfo.InvariantCulture)).Code);
        var sw = Stopwatch.StartNew();
        WaitJobDone(id);

        Assert.InRange(sw.Elapsed.TotalSeconds, 4.0, 20.0);
        Assert.Equal("COMPLETED", JobState(id));
        Assert.Equal("idle", NodeState());
        var row = Row(id);
        Assert.Equal("partial", row.Status);
        Assert.Contains("did not finalize the job within 5 s", row.Reason);
        // The node sampler is not killed for one job (others may be sampled by it): resumed, it drops the job the
        // epilog finalized and exits after its linger.
        Assert.Equal(0, Run("kill", "-CONT", pid.ToString(CultureInfo.InvariantCulture)).Code);
        AssertNoSampler(id);
    }

    [SkippableFact]
    public void SamplerThatCannotStartLeavesTheNodeIdleAndTheJobCompleted()
    {
        RequireLab();
        string id = Sbatch("sleep 1", "--hold");
        // A plain file where the job's state directory goes: the sampler cannot be set up.
        Directory.CreateDirectory(StateDir);
        string blocker = Path.Combine(StateDir, id);
        File.WriteAllText(blocker, "blocks the state directory\n");
        try
        {
            Assert.Equal(0, Run("scontrol", "release", id).Code);
            WaitJobDone(id);
            Assert.Equal("COMPLETED", JobState(id));
            Assert.Equal("idle", NodeState());
            Assert.Contains(HookLogSince(HookLogStart), l => l.Contains($"error: slurm prolog job {id} on "));
            Assert.Equal("not_measured", Row(id).Status);
            AssertNoSampler(id);
        }
        finally { File.Delete(blocker); }
    }

    [SkippableFact]
    public void ScancelStillFinalizes()
    {
        RequireLab();
        string id = Sbatch("sleep 60");
        WaitSamplerPid(id);
        Thread.Sleep(2000); // some samples
        Assert.Equal(0, Run("scancel", id).Code);
        WaitJobDone(id);

        Assert.Equal("CANCELLED", JobState(id));
        var row = Row(id);
        Assert.Equal("complete", row.Status);
        Assert.True(File.Exists(row.ParquetPath), row.ParquetPath);
        Assert.Equal("idle", NodeState());
        AssertNoSampler(id);
    }

    [SkippableFact]
    public void PrologReturnsQuickly()
    {
        RequireLab();
        // The hook exactly as slurmd runs it (wrapper, no argv, no PATH), for a job that has no cgroup: the
        // Prolog must not wait for anything. Then its Epilog, so no sampler is left behind.
        string id = "9" + (Environment.ProcessId % 100000).ToString("D5", CultureInfo.InvariantCulture) + "01";
        var env = new Dictionary<string, string>
        {
            ["SLURM_JOB_ID"] = id, ["SLURM_JOB_UID"] = Run("id", "-u", User).Out.Trim(), ["SLURM_JOB_GID"] = Run("id", "-g", User).Out.Trim(),
            ["SLURM_JOB_USER"] = User, ["SLURMD_NODENAME"] = NodeName(), ["SLURM_CLUSTER_NAME"] = "lab",
        };
        var times = new List<double>();
        try
        {
            env["SLURM_SCRIPT_CONTEXT"] = "prolog_slurmd";
            var sw = Stopwatch.StartNew();
            var r = Run(Path.Combine(Lab, "hooks", "prolog"), Array.Empty<string>(), env);
            times.Add(sw.Elapsed.TotalMilliseconds);
            Assert.Equal(0, r.Code);
        }
        finally
        {
            env["SLURM_SCRIPT_CONTEXT"] = "epilog_slurmd";
            Assert.Equal(0, Run(Path.Combine(Lab, "hooks", "epilog"), Array.Empty<string>(), env).Code);
        }
        // The hook's own measure of itself, from the log lines of this run's jobs (the other tests) and this one.
        var logged = HookLogSince(HookLogStart).Select(l => Regex.Match(l, @"slurm prolog job \d+ on \S+: .*\((\d+\.\d) ms\)$"))
            .Where(m => m.Success).Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).Order().ToList();
        Assert.NotEmpty(logged);
        double median = logged[logged.Count / 2];
        File.AppendAllText(Path.Combine(Lab, "log", "prolog-timing.txt"),
            $"{DateTime.UtcNow:O} wrapper+process {times[0]:F1} ms; in-process median {median:F1} ms, max {logged[^1]:F1} ms over {logged.Count} prologs\n");
        // No wait: a prolog that waited for the job's cgroup, or for a sampler, would run into its 8 s bound (README: a
        // prolog gives up within 8 s). The limits below are that check, 8 × below the bound and ~10 × above what this
        // 2-CPU machine shows with the whole suite and builds beside the lab; the speed itself is bench/node.sh's
        // (`make bench`: prolog that starts the sampler / with it running). A timed 250 ms / 100 ms failed a clean CI
        // run at load 17 (2026-12-02 09:03: wrapper + process 232.5 ms, in-process median 105.2 ms, max 483.7 ms).
        Assert.True(times[0] < 1000, $"prolog took {times[0]:F1} ms (wrapper + process start + hook)");
        Assert.True(median < 1000, $"median prolog (in-process) {median:F1} ms");
        // The slowest one is held to the hook's documented bound, not to a speed (one prolog that started the sampler
        // for a raw job took 1241 ms, 2026-12-01 22:58, against 20-140 ms for the others: notes, session 10).
        Assert.True(logged[^1] < 8000, $"slowest prolog (in-process) {logged[^1]:F1} ms");
        AssertNoSampler(id);
    }

    [SkippableFact]
    public void BareBinaryAsPrologRefusesHostileInputAndExitsZero()
    {
        RequireLab();
        // Prolog=/usr/local/bin/alumet-hpc: no argv, dispatch on SLURM_SCRIPT_CONTEXT, config from the environment.
        string id = "9" + (Environment.ProcessId % 100000).ToString("D5", CultureInfo.InvariantCulture) + "02";
        var env = new Dictionary<string, string>
        {
            ["SLURM_SCRIPT_CONTEXT"] = "prolog_slurmd", ["ALUMET_HPC_CONFIG"] = Config,
            ["SLURM_JOB_ID"] = id, ["SLURM_JOB_UID"] = "1000", ["SLURM_JOB_GID"] = "1000",
            ["SLURM_JOB_USER"] = "x$(touch /tmp/pwned)", ["SLURMD_NODENAME"] = NodeName(),
        };
        var r = Run(Bin, Array.Empty<string>(), env);
        Assert.Equal(0, r.Code);
        Assert.Contains(HookLogSince(HookLogStart), l => l.Contains("error: slurm prolog: refused: SLURM_JOB_USER \"x$(touch /tmp/pwned)\" is not a user name; nothing done"));
        Assert.False(Directory.Exists(Path.Combine(StateDir, id)));
        AssertNoSampler(id);
    }

    // ------------------------------------------------------------------------------------------ checks

    private static IEnumerable<string> HookLogSince(long offset)
    {
        using var f = new FileStream(HookLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        f.Seek(Math.Min(offset, f.Length), SeekOrigin.Begin);
        using var r = new StreamReader(f);
        var lines = new List<string>();
        while (r.ReadLine() is { } l) lines.Add(l);
        return lines;
    }

    private sealed record JobRow(string Status, string Reason, string ParquetPath, double JobJ, double NodeJ, double OtherJobsJ, double UnattributedJ, double ElapsedS,
                                 double PackageJ, double DramJ, double GpuJ);

    /// <summary>
    /// An exec job id from ExecIds (its cgroup is the machine's: the lab's cgroup_root is /sys/fs/cgroup) that the lab has
    /// not seen: its database and state dir outlive test runs, and a later run's test host may have an earlier one's pid
    /// (pid_max may be 32768).
    /// </summary>
    private static string NewExecId() => Alumet.Hpc.Tests.Fakes.ExecIds.Next(id =>
    {
        string state = Path.Combine(Lab, "alumet", "state", "exec", id);
        if (Directory.Exists(state) || File.Exists(state + ".finalized")) return true;
        if (!File.Exists(Database)) return false;
        using var con = new SqliteConnection($"Data Source={Database};Mode=ReadOnly");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = "SELECT count(*) FROM jobs WHERE scheduler = 'exec' AND job_id = $id";
        cmd.Parameters.AddWithValue("$id", id);
        return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture) > 0;
    });

    private static JobRow Row(string id)
    {
        using var con = new SqliteConnection($"Data Source={Database};Mode=ReadOnly");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = "SELECT status, reason, parquet_path, total_energy_j, node_energy_j, other_jobs_energy_j, unattributed_energy_j, elapsed_s, count(*) OVER (), " +
                          "energy_package_j, energy_dram_j, energy_gpu_j FROM jobs WHERE scheduler = 'slurm' AND job_id = $id AND node = $node";
        cmd.Parameters.AddWithValue("$id", id);
        cmd.Parameters.AddWithValue("$node", NodeName());
        using var rd = cmd.ExecuteReader();
        Assert.True(rd.Read(), $"no accounting row for job {id}");
        Assert.Equal(1L, rd.GetInt64(8));
        return new JobRow(rd.GetString(0), rd.GetString(1), rd.GetString(2), rd.GetDouble(3), rd.GetDouble(4), rd.GetDouble(5), rd.GetDouble(6), rd.GetDouble(7),
                          rd.GetDouble(9), rd.GetDouble(10), rd.GetDouble(11));
    }

    /// <param name="gpu">Slurm GPU index allocated to the job (one GPU at most here), null for none.</param>
    private static JobRow AssertMeasuredJob(string id, double minSeconds, int? gpu = null)
    {
        var row = Row(id);
        Assert.True(row.Status == "complete", $"job {id}: {row.Status} ({row.Reason})");
        Assert.StartsWith(DataDir, row.ParquetPath);
        Assert.True(File.Exists(row.ParquetPath), row.ParquetPath);
        // Node energy = the generated counters' power x measured time (the sampler's clock vs the writer's / the
        // fake NVML's): package-0 for the CPU side, each GPU for its own series.
        Assert.True(row.ElapsedS >= minSeconds - 0.5, $"elapsed {row.ElapsedS} s");
        var p = ParquetSums(row.ParquetPath, id);
        Assert.Equal(row.NodeJ, p["node"], 6);
        Assert.Equal(row.JobJ, p[$"job:{id}"], 6);
        Assert.InRange(ParquetSums(row.ParquetPath, id, CpuKinds)["node"] / row.ElapsedS, FakePowerW * 0.9, FakePowerW * 1.1);
        AssertGpuSplit(row, id, gpu);
        // The user reads their own file, nobody else does.
        Assert.Equal(0, Run("runuser", "-u", User, "--", "head", "-c", "4", row.ParquetPath).Code);
        Assert.NotEqual(0, Run("runuser", "-u", "nobody", "--", "head", "-c", "4", row.ParquetPath).Code);
        Assert.Equal(User, Run("stat", "-c", "%U", row.ParquetPath).Out.Trim());
        return row;
    }

    /// <summary>
    /// Per GPU (series resource_kind = gpu, by bus id): node = its power x elapsed; the job's GPU goes wholly to
    /// job:&lt;id&gt;, every other GPU wholly to unattributed (the sampler does not know other jobs' GPUs);
    /// job + other_jobs + unattributed = node; the row's GPU energy is the job's GPU series.
    /// </summary>
    private static void AssertGpuSplit(JobRow row, string id, int? gpu)
    {
        var sums = GpuSums(row.ParquetPath, id);
        Assert.Equal(FakeGpuBusIds.Order(), sums.Keys.Select(k => k.Bus).Distinct().Order());
        for (int g = 0; g < FakeGpuBusIds.Length; g++)
        {
            double Get(string consumer) => sums.GetValueOrDefault((FakeGpuBusIds[g], consumer));
            double node = Get("node"), job = Get($"job:{id}"), other = Get("other_jobs"), unattributed = Get("unattributed");
            string what = $"job {id}, GPU {g} ({FakeGpuBusIds[g]}): node {node:F3} J, job {job:F3} J, other {other:F3} J, unattributed {unattributed:F3} J";
            Assert.True(node >= FakeGpuPowerW[g] * row.ElapsedS * 0.9 - 1 && node <= FakeGpuPowerW[g] * row.ElapsedS * 1.1 + 1,
                $"{what}: expected node {FakeGpuPowerW[g]} W x {row.ElapsedS:F3} s");
            Assert.Equal(node, job + other + unattributed, 6);
            Assert.Equal(0.0, other);
            // Sums of doubles (DuckDB adds in any order): equal to 1 µJ.
            static bool Same(double x, double y) => Math.Abs(x - y) < 1e-6;
            if (g == gpu) Assert.True(Same(job, node) && unattributed == 0, $"{what}: the job's GPU must be the job's, whole");
            else Assert.True(job == 0 && Same(unattributed, node), $"{what}: a GPU the job does not hold must be unattributed, whole");
        }
        Assert.Equal(row.GpuJ, gpu is int k ? sums[(FakeGpuBusIds[k], $"job:{id}")] : 0.0, 6);
    }

    private static Dictionary<(string Bus, string Consumer), double> GpuSums(string path, string id)
    {
        using var con = new DuckDBConnection("Data Source=:memory:");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = $"SELECT resource_id, consumer, sum(energy_raw * joules_per_unit) FROM read_parquet('{path.Replace("'", "''")}') " +
                          $"WHERE resource_kind = 'gpu' AND job_id = '{id}' GROUP BY ALL";
        using var rd = cmd.ExecuteReader();
        var sums = new Dictionary<(string, string), double>();
        while (rd.Read()) sums[(rd.GetString(0), rd.GetString(1))] = Convert.ToDouble(rd.GetValue(2), CultureInfo.InvariantCulture);
        return sums;
    }

    /// <summary>The job line of <c>alumet-report --job N -P -X --noconvert</c> run by the user: GpuEnergy and TotalEnergy, J.</summary>
    private static (double GpuJ, double TotalJ) Report(string id)
    {
        var r = RunAs(Path.Combine(Lab, "bin", "alumet-report"), "--job", id, "-P", "-X", "--noconvert", "-o", "JobID,GpuEnergy,TotalEnergy");
        Assert.True(r.Code == 0, $"alumet-report --job {id} (as {User}): exit {r.Code}: {r.Err}");
        string[] lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("JobID|GpuEnergy|TotalEnergy", lines[0]);
        string[] f = Assert.Single(lines, l => l.StartsWith(id + "|", StringComparison.Ordinal)).Split('|');
        return (double.Parse(f[1], CultureInfo.InvariantCulture), double.Parse(f[2], CultureInfo.InvariantCulture));
    }

    private static Dictionary<string, double> ParquetSums(string path, string id, string kinds = CpuKinds + ",'gpu'")
    {
        using var con = new DuckDBConnection("Data Source=:memory:");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = $"SELECT consumer, sum(energy_raw * joules_per_unit) FROM read_parquet('{path.Replace("'", "''")}') " +
                          $"WHERE resource_kind IN ({kinds}) AND job_id = '{id}' GROUP BY consumer";
        using var rd = cmd.ExecuteReader();
        var sums = new Dictionary<string, double>();
        while (rd.Read()) sums[rd.GetString(0)] = Convert.ToDouble(rd.GetValue(1), CultureInfo.InvariantCulture);
        Assert.True(sums.ContainsKey("node") && sums.ContainsKey($"job:{id}"), $"{path}: consumers {string.Join(',', sums.Keys)}");
        return sums;
    }

    /// <summary>No node sampler of the lab left once its linger (1 s in the lab) is over: none outlives the last job.</summary>
    private static void AssertNoSampler(string id)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        List<int> left;
        do
        {
            left = NodeSamplerPids();
            if (left.Count == 0) return;
            Thread.Sleep(200);
        } while (DateTime.UtcNow < deadline);
        Assert.Fail($"node sampler(s) {string.Join(", ", left)} survived the last job (job {id})");
    }

    /// <summary>Live processes of this binary (or of alumet-hpc-sampler, what the prologs start) running <c>node-sampler</c> with the lab's config.</summary>
    private static List<int> NodeSamplerPids()
    {
        var found = new List<int>();
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid) || pid == Environment.ProcessId) continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                if (stat[(stat.LastIndexOf(')') + 2)] is 'Z' or 'X') continue;
                string[] argv = File.ReadAllText(Path.Combine(dir, "cmdline")).Split('\0');
                if (argv.Length > 1 && (argv[0].EndsWith("alumet-hpc", StringComparison.Ordinal) || argv[0].EndsWith(Alumet.Hpc.Jobs.SamplerLauncher.SamplerProgram, StringComparison.Ordinal)) && argv.Contains("node-sampler") && argv.Contains(Config))
                    found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }

    /// <summary>Today's node file (root-only Parquet of the node's own series), written when the node sampler exits.</summary>
    private static string NodeFile()
    {
        string dir = Path.Combine(DataDir, "lab", "node", NodeName());
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            var files = Directory.Exists(dir) ? Directory.GetFiles(dir, "*.parquet") : [];
            if (files.Length > 0) return files.OrderBy(f => File.GetLastWriteTimeUtc(f)).Last();
            Thread.Sleep(200);
        }
        Assert.Fail($"no node file in {dir}");
        return "";
    }

    /// <summary>
    /// A job's file (owned by its user) holds its own series (job, steps), and the node's (node, unattributed) only for
    /// the periods when no other job was registered on the node: co-tenants' activity never reaches it.
    /// </summary>
    private static void AssertOwnSeriesOrAlone(string jobId, string parquet, string nodeFile)
    {
        Assert.All(ParquetConsumers(parquet), c =>
            Assert.True(c == $"job:{jobId}" || c.StartsWith($"step:{jobId}.", StringComparison.Ordinal) || c is "node" or "unattributed", $"job {jobId}: consumer {c} in its file"));
        Assert.True(Scalar($"SELECT count(*) FROM read_parquet('{nodeFile}') WHERE consumer = 'job:{jobId}'") > 0, $"job {jobId} missing from the node file {nodeFile}");
        Assert.Equal(0L, Scalar($"""
            SELECT count(*) FROM read_parquet('{parquet}') f WHERE f.consumer IN ('node', 'unattributed')
              AND EXISTS (SELECT 1 FROM read_parquet('{nodeFile}') n
                          WHERE n.timestamp = f.timestamp AND n.consumer LIKE 'job:%' AND n.consumer <> 'job:{jobId}')
            """));
    }

    private static List<string> ParquetConsumers(string path)
    {
        using var con = new DuckDBConnection("Data Source=:memory:");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = $"SELECT DISTINCT consumer FROM read_parquet('{path.Replace("'", "''")}') ORDER BY 1";
        using var rd = cmd.ExecuteReader();
        var list = new List<string>();
        while (rd.Read()) list.Add(rd.GetString(0));
        return list;
    }

    private static long Scalar(string sql) => Convert.ToInt64(ScalarObj(sql), CultureInfo.InvariantCulture);

    private static object? ScalarObj(string sql)
    {
        using var con = new DuckDBConnection("Data Source=:memory:");
        con.Open();
        using var cmd = con.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    // ------------------------------------------------------------------------------------------ slurm

    private static string Sbatch(string script, params string[] extra)
    {
        var args = new List<string> { "--parsable", "-n1", "-o", "/dev/null" };
        args.AddRange(extra);
        args.Add("--wrap");
        args.Add(script);
        var r = RunAs("sbatch", args.ToArray());
        Assert.True(r.Code == 0, $"sbatch failed: {r.Err}");
        return r.Out.Trim().Split(';')[0];
    }

    /// <summary>Until the job has left the queue and its epilog has run (state no longer COMPLETING).</summary>
    private static void WaitJobDone(string id, double timeoutS = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutS);
        while (DateTime.UtcNow < deadline)
        {
            string state = JobState(id);
            if (state is "COMPLETED" or "CANCELLED" or "FAILED" or "TIMEOUT" or "NODE_FAIL" or "OUT_OF_MEMORY" && NodeState() != "completing")
                return;
            Thread.Sleep(200);
        }
        Assert.Fail($"job {id} not done after {timeoutS} s (state {JobState(id)}, node {NodeState()})");
    }

    /// <summary>The node sampler's pid once it has registered the job.</summary>
    private static int WaitSamplerPid(string id, double timeoutS = 20)
    {
        string file = Path.Combine(StateDir, "..", "node", "sampler.pid");
        string registration = Path.Combine(StateDir, id, "registration");
        var deadline = DateTime.UtcNow.AddSeconds(timeoutS);
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                string text = File.ReadAllText(file).Trim();
                if (File.Exists(registration) && int.TryParse(text.Split(' ')[0], out int pid) && pid > 0) return pid;
            }
            catch (IOException) { }
            Thread.Sleep(100);
        }
        Assert.Fail($"no {file} / {registration} after {timeoutS} s (job {id} state {JobState(id)})");
        return 0;
    }

    private static string JobState(string id)
    {
        var m = Regex.Match(Run("scontrol", "show", "job", id).Out, @"JobState=(\S+)");
        return m.Success ? m.Groups[1].Value : "UNKNOWN";
    }

    private static string NodeState() => Run("sinfo", "-h", "-o", "%T").Out.Trim();

    private static string NodeName() => Run("sinfo", "-h", "-o", "%N").Out.Trim();

    // ------------------------------------------------------------------------------------------ processes

    private readonly record struct Result(int Code, string Out, string Err);

    private static Result RunAs(string file, params string[] args) =>
        Run("runuser", new[] { "-u", User, "--", file }.Concat(args).ToArray(), null, Path.Combine(Lab, "out"));

    private static Result Run(string file, params string[] args) => Run(file, args, null);

    private static Result Run(string file, string[] args, IReadOnlyDictionary<string, string>? cleanEnv, string? cwd = null)
    {
        var psi = new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = cwd ?? "/",
        };
        if (cleanEnv is not null)
        {
            // What slurmd gives a hook: its own variables, no PATH, no HOME.
            psi.Environment.Clear();
            foreach (var (k, v) in cleanEnv) psi.Environment[k] = v;
        }
        psi.Environment["SLURM_CONF"] = Path.Combine(Lab, "etc", "slurm.conf");
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(120_000)) { p.Kill(true); Assert.Fail($"{file} {string.Join(' ', args)} hung"); }
        return new Result(p.ExitCode, output, err.Result);
    }

    private static string RepoRoot([System.Runtime.CompilerServices.CallerFilePath] string here = "")
    {
        // tests/Alumet.Hpc.Tests/Schedulers/Slurm/<this file> -> repository root
        return Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", "..", ".."));
    }
}
