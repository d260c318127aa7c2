using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Schedulers.Slurm;
using Alumet.Hpc.Tests.Commands;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Schedulers.Slurm;

/// <summary>
/// A job asks for raw storage itself with <c>--comment=alumet:raw</c> (Slurm 22.05 gives the prolog the comment,
/// not --profile/--acctg-freq); <c>[sampler] job_raw = "deny"</c> ignores the request. Through the real binary as
/// slurmd runs the Prolog and the Epilog.
/// </summary>
public class RawRequestTests
{
    private const ulong MaxRange = 262_143_328_850;

    [Theory]
    [InlineData("alumet:raw", true)]
    [InlineData("ALUMET:RAW", true)]
    [InlineData("campaign 7, alumet:raw", true)]
    [InlineData("alumet:raw;priority", true)]
    [InlineData("alumet:rawx", false)]
    [InlineData("xalumet:raw", false)]
    [InlineData("alumet", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void TheCommentAsksForRawStorageWithAWord(string? comment, bool raw) =>
        Assert.Equal(raw, SlurmHook.RawRequested(comment));

    private static int Hook(TestInstallation install, string context, string jobId, string comment)
    {
        using var p = install.StartSlurmHook(context, jobId, ("SLURM_JOB_COMMENT", comment));
        Assert.True(p.WaitForExit(60_000));
        return p.ExitCode;
    }

    [Theory]
    [InlineData("allow", 0)]
    [InlineData("deny", 1000)]
    public void ARawRequestInTheCommentStoresEveryReadUnlessTheAdminDenies(string policy, int storedPeriodMs)
    {
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange),
            $"storage_period_ms = 1000\nflush_interval_ms = 100\nattribution = \"exclusive\"\njob_raw = \"{policy}\"\nlinger_s = 0");
        Assert.Equal(0, Hook(install, "prolog_slurmd", "501", "campaign 7, alumet:raw"));
        var job = new JobIdentity("slurm", "test", "501", "root", 0, "node1");
        string state = job.StateDirectory(install.Config.Paths.StateDir);
        Assert.Contains(policy == "allow" ? " raw=1" : " raw=0", File.ReadAllText(Path.Combine(state, JobRegistration.File)));
        Thread.Sleep(1500);
        install.Powercap.SetEnergy("intel-rapl:0", 2_000_000);
        Thread.Sleep(1200);
        Assert.Equal(0, Hook(install, "epilog_slurmd", "501", "campaign 7, alumet:raw"));

        var log = File.ReadAllText(install.PathOf("alumet-hpc.log"));
        Assert.Contains(policy == "allow" ? "job 501 registered (1 job(s) on the node, raw storage)"
            : "job 501 registered (1 job(s) on the node, its raw-storage request ignored ([sampler] job_raw = \"deny\"))", log);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("501"));
        Assert.Equal((JobStatus.Complete, ""), (row.Status, row.Reason));
        Assert.Equal(storedPeriodMs, row.StoragePeriodMs);
        Assert.Equal(2.0, row.Energy.PackageJ, 12); // exact either way: the counter's 2 J since the prolog
        long records = Convert.ToInt64(ExecBinaryTests.Scalar($"SELECT count(*) FROM read_parquet('{row.ParquetPath}') WHERE consumer = 'node' AND resource_kind = 'cpu_package'"));
        // The job is alone (exclusive) so its file holds the node series. Raw: every read (RAPL at rapl_hz = 1 kHz for ~2.7 s; a loaded machine misses some); aggregated: one per second.
        if (policy == "allow") Assert.True(records > 500, $"{records} package records at raw storage");
        else Assert.InRange(records, 2, 4);
    }

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int sched_getscheduler(int pid);
    private const int Fifo = 1, ResetOnFork = 0x40000000;

    /// <summary>Every thread of <paramref name="pid"/>: (tid, name, policy as sched_getscheduler(2) gives it: SCHED_RESET_ON_FORK or'ed in).</summary>
    private static List<(int Tid, string Name, int Policy)> Threads(int pid)
    {
        var threads = new List<(int, string, int)>();
        foreach (string dir in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            int tid = int.Parse(Path.GetFileName(dir));
            string name;
            try { name = File.ReadAllText(Path.Combine(dir, "comm")).TrimEnd('\n'); }
            catch (IOException) { continue; } // a thread that ended meanwhile
            int policy = sched_getscheduler(tid);
            if (policy >= 0) threads.Add((tid, name, policy));
        }
        return threads;
    }

    /// <summary>
    /// At raw storage the node sampler's tick thread runs at SCHED_FIFO (root, tick_scheduling = "fifo") with
    /// SCHED_RESET_ON_FORK, and it alone: nothing it creates — a thread, a finalize-job child — starts real-time, and every
    /// other thread stays SCHED_OTHER through snapshots and flushes. On dd629f5, with raw storage from the start, the tick
    /// thread started the others while SCHED_FIFO and they inherited it (pthread_create's default): the housekeeping
    /// thread, and every finalize-job child it starts (a Parquet export at real-time priority: two of them keep every
    /// SCHED_OTHER thread of a 2-CPU node waiting up to 950 ms a second).
    /// </summary>
    [SkippableFact]
    public void OnlyTheTickThreadOfARawStorageSamplerIsRealTime()
    {
        Skip.If(Environment.UserName != "root", "needs root (SCHED_FIFO, the hooks' node sampler)");
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), "storage_period_ms = 0\nattribution = \"exclusive\"\nlinger_s = 0\nattribution_period_ms = 100\nflush_interval_ms = 100");
        Assert.Equal(0, Hook(install, "prolog_slurmd", "502", ""));
        try
        {
            int pid = SamplerPid.Read(Alumet.Hpc.Spool.NodeSpool.Root(install.Config))!.Value.Pid;
            var threads = Threads(pid);
            // Until the housekeeping thread runs and the tick thread ticks at SCHED_FIFO (it starts the others first).
            for (var sw = System.Diagnostics.Stopwatch.StartNew();
                 !(threads.Any(t => t.Name == "housekeeping") && threads.Any(t => t.Tid == pid && t.Policy == (Fifo | ResetOnFork))) && sw.Elapsed < TimeSpan.FromSeconds(30);
                 threads = Threads(pid))
                Thread.Sleep(20);
            string all = string.Join(", ", threads.Select(t => $"{t.Tid} {t.Name} policy {t.Policy:x}"));
            Assert.True(threads.Any(t => t.Name == "housekeeping"), $"no housekeeping thread: {all}");
            // The tick thread is the daemon's main thread (Sampler.Run's caller).
            Assert.True(threads.Single(t => t.Tid == pid).Policy == (Fifo | ResetOnFork), $"the tick thread is not SCHED_FIFO with reset-on-fork: {all}");
            // Over 2 s (20 snapshots and flushes): every other thread SCHED_OTHER (0) whenever looked at.
            for (var sw = System.Diagnostics.Stopwatch.StartNew(); sw.Elapsed < TimeSpan.FromSeconds(2); Thread.Sleep(2))
                foreach (var t in Threads(pid).Where(t => t.Tid != pid))
                    Assert.True(t.Policy == 0, $"thread {t.Tid} {t.Name} at policy {t.Policy:x}");
        }
        finally { Assert.Equal(0, Hook(install, "epilog_slurmd", "502", "")); }
    }

    /// <summary>
    /// README "Timing": the tick thread's timer slack is 1 ns. At tick_scheduling = "normal": a SCHED_FIFO thread's
    /// sleeps have no slack at all, and kernels from 6.8 report 0 for it.
    /// </summary>
    [SkippableFact]
    public void TheTickThreadsTimerSlackIs1Ns()
    {
        Skip.If(Environment.UserName != "root", "needs root (the hooks' node sampler)");
        const string normalRawTick = "storage_period_ms = 0\ntick_scheduling = \"normal\"\nattribution = \"exclusive\"\nlinger_s = 0";
        using var install = new TestInstallation(PowercapTree.Standard(1, MaxRange), normalRawTick);
        int started = Hook(install, "prolog_slurmd", "503", "");
        string slack = $"/proc/{SamplerPid.Read(Alumet.Hpc.Spool.NodeSpool.Root(install.Config))!.Value.Pid}/timerslack_ns"; // the main (tick) thread's
        for (var sw = System.Diagnostics.Stopwatch.StartNew(); File.ReadAllText(slack) != "1\n" && sw.Elapsed < TimeSpan.FromSeconds(30);)
            Thread.Sleep(20);
        string seen = File.ReadAllText(slack);
        Assert.Equal((0, "1\n", 0), (started, seen, Hook(install, "epilog_slurmd", "503", "")));
    }
}
