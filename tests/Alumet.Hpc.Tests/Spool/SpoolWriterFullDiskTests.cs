using System.Diagnostics;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Spool;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Outputs;
using Alumet.Hpc.Tests.Sampling;

namespace Alumet.Hpc.Tests.Spool;

/// <summary>The spool on a real full filesystem: a small tmpfs (root only; skipped with the reason otherwise).</summary>
[Collection("Log")]
public sealed class SpoolWriterFullDiskTests : IDisposable
{
    private readonly string _mount = Directory.CreateTempSubdirectory("alumet-full-").FullName;
    private readonly string _log = Path.GetTempFileName();
    private bool _mounted;

    public void Dispose()
    {
        Log.Configure(null, "alumet-hpc", syslog: false, stderr: false);
        if (_mounted) Run("umount", "-l", _mount); // lazy: files a failed test left open do not keep it mounted
        Directory.Delete(_mount, recursive: true);
        File.Delete(_log);
    }

    internal static int Run(string exe, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(exe, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        p.WaitForExit();
        return p.ExitCode;
    }

    /// <summary>A 256 KiB tmpfs at the mount point, the log in a file (skipped unless root).</summary>
    private void MountSmallTmpfs()
    {
        Skip.If(Environment.UserName != "root", "needs root to mount a small tmpfs (a real full filesystem)");
        Assert.Equal(0, Run("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", _mount));
        _mounted = true;
        Log.Configure(_log, "alumet-hpc", syslog: false, stderr: false);
    }

    /// <summary>
    /// The small tmpfs as a node sampler's state dir, counters, /proc/stat and the jobs' cgroup CPU at 0: the config for
    /// <paramref name="rig"/>.NewNode.
    /// </summary>
    private AlumetConfig NodeOnSmallTmpfs(NodeRig rig, int storageMs, params string[] jobIds)
    {
        MountSmallTmpfs();
        var cfg = rig.Config(storageMs);
        cfg.Paths.StateDir = Path.Combine(_mount, "state");
        rig.SetCounters(0, 0, 0);
        rig.Proc.SetStat(0, 0);
        foreach (string id in jobIds) rig.SetJobCpu(id, 0);
        return cfg;
    }

    /// <summary>Fills the filesystem at <paramref name="mount"/> to the last byte; returns the filler to delete.</summary>
    internal static string Fill(string mount)
    {
        string filler = Path.Combine(mount, "filler");
        using var f = new FileStream(filler, FileMode.Create);
        var block = new byte[4096];
        try { while (true) f.Write(block); } catch (IOException) { }
        return filler;
    }

    [SkippableFact]
    public void ADiskFullMidJobKeepsEveryTotalLogsOnceAndLosesNothingOnceSpaceReturns()
    {
        MountSmallTmpfs();

        string dir = Path.Combine(_mount, "job");
        var meta = TestSpools.Meta("31");
        meta.Series.Add(TestSpools.S("node", "cpu_package", "0"));
        meta.Series.Add(TestSpools.S("job:31", "cpu_package", "0"));
        long sec = 1_000_000_000, expected0 = 0, expected1 = 0;
        using var w = new SpoolWriter(dir, meta, bufferRecords: 16);
        void Period(int t)
        {
            w.Append(TestSpools.R(TestSpools.T0 + t * sec, sec, 1_000 + t, 0));
            w.Append(TestSpools.R(TestSpools.T0 + t * sec, sec, 10 + t, 1));
            expected0 += 1_000 + t;
            expected1 += 10 + t;
        }
        for (int t = 1; t <= 4; t++) Period(t);
        w.Flush();

        string filler = Fill(_mount);
        for (int t = 5; t <= 200; t++) { Period(t); if (t % 2 == 0) w.Flush(); } // 392 records through a 16-record buffer
        File.Delete(filler);
        for (int t = 201; t <= 202; t++) Period(t);
        w.Flush();

        var records = SpoolReader.ReadAll(dir).ToList();
        Assert.Equal(expected0, records.Where(r => r.Series == 0).Sum(r => r.Value));
        Assert.Equal(expected1, records.Where(r => r.Series == 1).Sum(r => r.Value));
        Assert.Equal(202 * sec, records.Where(r => r.Series == 1).Sum(r => r.IntervalNs)); // the time covered is whole too
        var lines = File.ReadAllLines(_log);
        Assert.Equal(2, lines.Length);
        Assert.Contains("write failed (", lines[0]);
        Assert.Contains("writing again after", lines[1]);
        var episode = Assert.Single(w.WriteFailures);
        Assert.StartsWith("state dir full from ", episode);
    }

    /// <summary>
    /// While writes fail the records wait in the buffer, each with its own time, as before (up to bufferRecords, then
    /// merged per series), and are not retried at every record; once space returns all of them are written, and the
    /// buffer is written every <see cref="SpoolWriter.WriteBytes"/> again.
    /// </summary>
    [SkippableFact]
    public void WhileTheStateDirIsFullEveryRecordIsKeptThenTheBufferIsWrittenEvery16KiBAgain()
    {
        MountSmallTmpfs();
        string dir = Path.Combine(_mount, "job");
        var meta = TestSpools.Meta("32");
        meta.Series.Add(TestSpools.S("node", "cpu_package", "0"));
        long sec = 1_000_000_000;
        using var w = new SpoolWriter(dir, meta);
        string filler = Fill(_mount);
        for (int t = 1; t <= 2000; t++) { w.Append(TestSpools.R(TestSpools.T0 + t * sec, sec, t, 0)); if (t % 100 == 0) w.Flush(); }
        File.Delete(filler);
        w.Flush();
        var records = SpoolReader.ReadAll(dir).ToList();
        Assert.Equal(Enumerable.Range(1, 2000).Select(t => (long)t), records.Select(r => r.Value)); // none merged
        Assert.Equal(Enumerable.Range(1, 2000).Select(t => TestSpools.T0 + t * sec), records.Select(r => r.WallNs));
        Assert.Equal(2, File.ReadAllLines(_log).Length); // one line when the episode starts, one when it ends
        for (int t = 2001; t <= 2600; t++) w.Append(TestSpools.R(TestSpools.T0 + t * sec, sec, t, 0));
        Assert.Equal(2000 + 512, SpoolReader.ReadAll(dir).Count()); // written at the 513th record, before any flush
    }

    /// <summary>
    /// A series that first appears while the state dir is full (a job step started meanwhile) costs nothing: its meta.json
    /// entry waits in memory with the records, for the flush that works again. It used to be written at once, and the
    /// failed write aborted that period's split half-way (the counters' deltas already taken): energy lost, node ≠ Σ.
    /// </summary>
    [SkippableFact]
    public void AStepThatStartsWhileTheStateDirIsFullLosesNoEnergyAndEveryIntervalConserves()
    {
        const long Ms = 1_000_000, Wall0 = 1_700_000_000_000 * Ms;
        using var rig = new NodeRig();
        var cfg = NodeOnSmallTmpfs(rig, 1000, "42", "43");
        using var node = rig.NewNode(cfg);
        node.Register(NodeRig.Job("42"), false, 0, Wall0);
        node.Register(NodeRig.Job("43"), false, 0, Wall0);
        // Each second: the node busy 1 s (100 ticks), job 42 0.5 s (from the 2nd second, 0.2 s of it in step 0), job 43 0.25 s.
        void Second(int t)
        {
            rig.SetCounters((ulong)t * 1_000_000, (ulong)t * 600_000, (ulong)t * 100_000);
            rig.Proc.SetStat((ulong)t * 100, 0);
            rig.SetJobCpu("42", (ulong)t * 500_000_000);
            rig.SetJobCpu("43", (ulong)t * 250_000_000);
            if (t >= 2) rig.Cgroups.SetV1Usage("cpuacct/slurm/uid_1000/job_42/step_0", (ulong)(t - 1) * 200_000_000);
            node.Snapshot(t * 1000 * Ms, Wall0 + t * 1000 * Ms);
            node.Flush();
        }
        Second(1);
        string filler = Fill(_mount);
        Second(2); // step 0 appears: a new series in job 42's file while nothing can be written
        Second(3);
        File.Delete(filler);
        Second(4);
        node.Close(4000 * Ms, Wall0 + 4000 * Ms);

        string nodeDir = Directory.GetDirectories(Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory)).Single();
        var nodeRows = NodeSamplerTests.Rows(nodeDir);
        Conservation.AssertEveryInterval(nodeDir, 4 * 3); // the four seconds, per counter
        Assert.Equal(4, nodeRows.Where(x => x.Consumer == "node").Select(x => x.R.WallNs).Distinct().Count());
        var sums = NodeSamplerTests.Sums(nodeDir);
        Assert.Equal(4_000_000, sums[("node", "cpu_package:0")]);
        Assert.Equal(2_000_000, sums[("job:42", "cpu_package:0")]);
        Assert.Equal(1_000_000, sums[("job:43", "cpu_package:0")]);
        Assert.Equal(1_000_000, sums[("unattributed", "cpu_package:0")]);
        Assert.Equal(100_000, sums[("unattributed", "dram:0")]);
        var job42 = NodeSamplerTests.Sums(NodeRig.Job("42").Job.StateDirectory(cfg.Paths.StateDir));
        Assert.Equal(2_000_000, job42[("job:42", "cpu_package:0")]);
        Assert.Equal(600_000, job42[("step:42.0", "cpu_package:0")]); // 0.2 of 1 s in each of seconds 2-4
        Assert.Equal(360_000, job42[("step:42.0", "cpu_cores:0")]);
    }

    /// <summary>An <c>exec</c> job (the whole node while alone, the CPU-time split once it shares) of alice on node1.</summary>
    private static Alumet.Hpc.Jobs.JobRegistration Exec(string id) =>
        new(new Alumet.Hpc.Jobs.JobIdentity("exec", "test", id, "alice", 1000, "node1"), null, null, false, false, 1) { ExclusiveWhenAlone = true };

    /// <summary>
    /// An exec alone on the node, then a second job registers when the state dir has room for the new job's files but
    /// not for anything more: the exec's relabel (its first shared period: "cgroup-cpu-time") used to be written at
    /// once inside the registration, and its failure threw out of it half-way. Now it waits in memory like a new series
    /// and reaches meta.json at the first flush that works, before the shared periods' records. On 9b24eb8 the
    /// registration was answered "No space left on device" although the job was in the registry (a retry: "already
    /// registered"); the relabel was lost for good (the exec's row said "exclusive", complete); and at raw storage the
    /// registry was left half-rebuilt: the node's every read still went to the exec's file while it shared the node.
    /// </summary>
    [SkippableTheory]
    [InlineData(1000)]
    [InlineData(0)] // raw storage: the snapshot's own read is the node's raw row, at the snapshot's stamps
    public void AJobThatJoinsAnExecWhileTheStateDirIsFullIsRegisteredAndTheExecsRelabelReachesItsFileOnceSpaceReturns(int storageMs)
    {
        const long Ms = 1_000_000, Wall0 = 1_700_000_000_000 * Ms;
        using var rig = new NodeRig();
        var cfg = NodeOnSmallTmpfs(rig, storageMs, "7", "42");
        using var node = rig.NewNode(cfg);
        Assert.Equal("job 7 registered (1 job(s) on the node)", node.Register(Exec("7"), false, 0, Wall0));
        // Each second: the node busy 1 s (100 ticks), the exec 0.5 s, job 42 0.25 s; 1 J of package, 0.6 J of cores, 0.1 J of dram.
        void Second(int t)
        {
            rig.SetCounters((ulong)t * 1_000_000, (ulong)t * 600_000, (ulong)t * 100_000);
            rig.Proc.SetStat((ulong)t * 100, 0);
            rig.SetJobCpu("7", (ulong)t * 500_000_000);
            rig.SetJobCpu("42", (ulong)(t - 1) * 250_000_000);
            node.Snapshot(t * 1000 * Ms, Wall0 + t * 1000 * Ms);
            node.Flush();
        }
        Second(1); // the exec alone: the whole node

        // Room for two pages: the new job's meta.json and registration file (tmpfs gives each file whole pages).
        string filler = Fill(_mount);
        using (var f = new FileStream(filler, FileMode.Open)) f.SetLength(f.Length - 2 * Environment.SystemPageSize);
        Assert.Equal("job 42 registered (2 job(s) on the node)", node.Register(NodeRig.Job("42"), false, 1000 * Ms, Wall0 + 1000 * Ms));
        Second(2);
        Second(3);
        // Still full: the exec's file on disk is as it was, its label and its records (only the exclusive second), so
        // a sampler restarted now would rightly recover it as never shared (SharedBefore reads this file).
        string execDir = Exec("7").Job.StateDirectory(cfg.Paths.StateDir);
        Assert.Equal("exclusive", SpoolWriter.ReadMeta(execDir).AttributionMode);
        Assert.All(NodeSamplerTests.Rows(execDir), x => Assert.Equal(Wall0 + 1000 * Ms, x.R.WallNs));
        File.Delete(filler);
        Second(4);
        var meta = SpoolWriter.ReadMeta(execDir);
        Assert.Equal("cgroup-cpu-time", meta.AttributionMode);
        Assert.StartsWith("test perimeter | Attribution: the whole node for the periods the command was alone on it; otherwise", meta.Perimeter);
        // The node's series are in the exec's file for its exclusive second only (CVE-2020-8694: never while it shares).
        var execSums = NodeSamplerTests.Sums(execDir);
        Assert.Equal((1_000_000, 2_500_000, 0),
            (execSums[("node", "cpu_package:0")], execSums[("job:7", "cpu_package:0")], execSums[("unattributed", "cpu_package:0")]));

        var o42 = node.End(NodeRig.Job("42").Key, complete: true, "", 4000 * Ms, Wall0 + 4000 * Ms)!;
        var o7 = node.End(Exec("7").Key, complete: true, "", 4000 * Ms, Wall0 + 4000 * Ms)!;
        node.Close(4000 * Ms, Wall0 + 4000 * Ms);
        // The exec: the whole first second, then half of each shared second (its 0.5 s of the node's busy 1 s).
        Assert.Equal("cgroup-cpu-time", o7.Record!.AttributionMode);
        Assert.Equal(1.0 + 3 * 0.5, o7.Record.Energy.PackageJ, 12);
        Assert.Equal(0.75, o42.Record!.Energy.PackageJ, 12);
        Assert.Equal(("partial", "partial"), (o7.Status, o42.Status));
        Assert.StartsWith("state dir full from ", o7.Reason);
        string nodeDir = Directory.GetDirectories(Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory)).Single();
        Conservation.AssertEveryInterval(nodeDir, 4 * 3); // the four seconds, per counter
        var sums = NodeSamplerTests.Sums(nodeDir);
        Assert.Equal((4_000_000, 2_500_000, 750_000, 750_000),
            (sums[("node", "cpu_package:0")], sums[("job:7", "cpu_package:0")], sums[("job:42", "cpu_package:0")], sums[("unattributed", "cpu_package:0")]));
    }

    /// <summary>
    /// At raw storage the tick's reads fill the node spool's buffer, and its 16 KiB write runs on the tick thread
    /// (SCHED_FIFO): when it fails, the error line is not written there (a log line allocates and writes the log) but
    /// by the next flush, the housekeeping's, once; its end likewise.
    /// </summary>
    [SkippableFact]
    public void ATicksFailedWriteIsSaidByTheNextFlushNotOnTheTick()
    {
        const long Ms = 1_000_000, Wall0 = 1_700_000_000_000 * Ms;
        using var rig = new NodeRig();
        var cfg = NodeOnSmallTmpfs(rig, 0, "42");
        using var node = rig.NewNode(cfg);
        node.Register(NodeRig.Job("42"), false, 0, Wall0);
        void Ticks(long from, long to)
        {
            for (long t = from; t <= to; t++)
            {
                rig.SetCounters((ulong)t * 1_000, (ulong)t * 600, (ulong)t * 100);
                Assert.True(node.Buffer.Read(rig.Slot!, t * Ms, Wall0 + t * Ms));
            }
        }
        Ticks(1, 10);
        node.Flush(); // the day's series and its first 30 reads
        string filler = Fill(_mount);
        Ticks(11, 200); // 570 records: the buffer passes 16 KiB at the 513th, and the tick's write fails
        Assert.DoesNotContain("write failed", File.ReadAllText(_log));
        node.Flush();
        Assert.Single(File.ReadAllLines(_log), l => l.Contains("spool.bin: write failed (No space left on device"));
        File.Delete(filler);
        node.Flush();
        Assert.Single(File.ReadAllLines(_log), l => l.Contains("spool.bin: writing again after 0 s of failed writes; nothing lost"));
        string day = Directory.GetDirectories(Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory)).Single();
        Assert.Equal(600L * SpoolRecord.Size, new FileInfo(Path.Combine(day, SpoolWriter.RecordsFile)).Length);
        node.Close(200 * Ms, Wall0 + 200 * Ms);
    }

    /// <summary>
    /// A UTC midnight whose day cannot be opened (the state dir full): the day before stays open, the tick's reads go on
    /// into it, and the next period's roll opens the new day once there is room. The day before was closed first: its
    /// last records were lost with its writer, and the tick's next read found no day open and opened it itself, on the
    /// real-time thread, where the same failure ended the sampler (an IOException out of the tick loop).
    /// </summary>
    [SkippableFact]
    public void AMidnightWhoseDayCannotBeOpenedKeepsTheDayBeforeOpenAndTheTickGoesOn()
    {
        const long Ms = 1_000_000, Day = 86_400_000 * Ms;
        long w0 = 20_000 * Day - 500 * Ms; // 2024-10-03T23:59:59.5Z
        using var rig = new NodeRig();
        var cfg = NodeOnSmallTmpfs(rig, 0, "42");
        using var node = rig.NewNode(cfg);
        node.Register(NodeRig.Job("42", exclusive: true), false, 0, w0);
        void Ticks(long from, long to)
        {
            for (long t = from; t <= to; t++)
            {
                rig.SetCounters((ulong)t * 1_000, (ulong)t * 600, (ulong)t * 100);
                Assert.True(node.Buffer.Read(rig.Slot!, t * Ms, w0 + t * Ms));
            }
        }
        Ticks(1, 300);
        node.Snapshot(300 * Ms, w0 + 300 * Ms);
        node.Flush();
        string filler = Fill(_mount);
        Ticks(301, 600); // midnight at 500 ms
        Assert.ThrowsAny<IOException>(() => node.Snapshot(600 * Ms, w0 + 600 * Ms)); // its split is in the day before; the new day's files cannot be written
        Ticks(601, 700);
        File.Delete(filler);
        node.Snapshot(700 * Ms, w0 + 700 * Ms); // the roll opens the new day now
        node.Flush();
        string[] days = Directory.GetDirectories(Path.Combine(cfg.Paths.StateDir, NodeSpool.Directory)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["2024-10-03", "2024-10-04"], days.Select(d => Path.GetFileName(d)));
        var before = NodeSamplerTests.Sums(days[0]);
        Assert.Equal((700_000, 700_000, 0), (before[("node", "cpu_package:0")], before[("job:42", "cpu_package:0")], before[("unattributed", "cpu_package:0")]));
        Assert.Equal(700 * 3 + 3 * 3 * 2, NodeSamplerTests.Rows(days[0]).Count); // every read, and 3 periods' split (share, unattributed)
        Assert.Empty(NodeSamplerTests.Rows(days[1]));
        node.Close(700 * Ms, w0 + 700 * Ms);
    }
}
