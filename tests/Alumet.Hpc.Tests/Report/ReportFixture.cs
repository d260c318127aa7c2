using System.Runtime.CompilerServices;
using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Report;
using Alumet.Hpc.Tests.Outputs;
using Xunit;

namespace Alumet.Hpc.Tests.Report;

/// <summary>An accounting DB with one job of each kind, and helpers to run alumet-report in-process.</summary>
public sealed class ReportFixture : IDisposable
{
    private static readonly DateTime T = new(2026, 11, 25, 8, 0, 0, DateTimeKind.Utc);

    /// <summary>"now" of the in-process runs: the evening of the fixture's day, so that its jobs are "today" (UTC).</summary>
    public static readonly DateTime Now = new(2026, 11, 25, 23, 0, 0, DateTimeKind.Utc);
    public TempDir Dir { get; } = new();
    public string Db => Dir.Sub("acct.db");

    public ReportFixture()
    {
        using var db = AccountingDb.Open(Db);
        foreach (var r in Records()) db.Upsert(r);
    }

    public static JobRecord Rec(string job, string node, string user, int uid, DateTime start, double seconds, DomainEnergies e, double maxW,
        string status = JobStatus.Complete, string reason = "", string ifaces = "powercap", bool estimated = false, string model = "",
        long wrap = 0, long readErrors = 0, IReadOnlyList<StepRecord>? steps = null) => new(
        "lab", "slurm", job, node, user, uid, start, start.AddSeconds(seconds), seconds, e, seconds > 0 ? e.TotalJ / seconds : 0, maxW,
        1000, estimated ? "estimate=10" : "rapl=1000", ifaces, estimated, model, "RAPL package+dram", "cgroup-cpu-time", 1000,
        (long)seconds, wrap, readErrors, e.TotalJ * 2, e.TotalJ / 2, e.TotalJ / 2, status, reason, $"/data/{job}.{node}.parquet", "0.1.0", steps ?? []);

    public static IEnumerable<JobRecord> Records()
    {
        // 1234: one node, CPU + GPU, two steps.
        yield return Rec("1234", "n1", "alice", 1001, T, 3661.5, new DomainEnergies(1_234_567.891, 800_000, 0, 56_789.5, 0, 2_500_000), 1523.75,
            ifaces: "nvml-energy-counter,powercap",
            steps: [new StepRecord("1234.batch", T, T.AddSeconds(60), 60, new DomainEnergies(12_000, 9_000, 0, 600, 0, 0), 210, 250.5, 60, 0),
                    new StepRecord("1234.0", T.AddSeconds(60), T.AddSeconds(3661.5), 3601.5, new DomainEnergies(1_200_000, 790_000, 0, 56_000, 0, 2_500_000), 1044.8, 1523.75, 3601, 0)])
            with
            {
                Uncertainty = new(190_000, 40_000, 3, 0, 2),
                Carbon = new(4_738_148, 520_000, 65_807.6, 9_100, "IT energy (TotalEnergy: package+dram+gpu, this job's share) x PUE(t) [constant 1.25] x intensity(t) [file /etc/alumet-hpc/ci.csv], per stored interval", ""),
            };
        // 1300: two nodes, one partial, one with wrap-ambiguous samples; a step on both nodes.
        yield return Rec("1300", "n1", "bob", 1002, T.AddHours(1), 90061, new DomainEnergies(9_000_000, 0, 0, 1_000_000, 0, 0), 180.25, wrap: 3,
            steps: [new StepRecord("1300.0", T.AddHours(1), T.AddHours(2), 3600, new DomainEnergies(500_000, 0, 0, 50_000, 0, 0), 152.78, 170, 3600, 1)])
            with { Uncertainty = new(500_000, 100_000, 10, 1_200_000, 2) };
        yield return Rec("1300", "n2", "bob", 1002, T.AddHours(1).AddSeconds(12), 90049, new DomainEnergies(8_500_000, 0, 0, 950_000, 0, 0), 175.5,
            status: JobStatus.Partial, reason: "sampler started 12 s late", readErrors: 2,
            steps: [new StepRecord("1300.0", T.AddHours(1).AddSeconds(12), T.AddHours(2), 3588, new DomainEnergies(480_000, 0, 0, 48_000, 0, 0), 147.16, 165, 3588, 0)])
            with { Uncertainty = new(475_000, 95_000, 10, 0, 2) };
        // 1400: estimated (no RAPL on this node).
        yield return Rec("1400", "n3", "alice", 1001, T.AddHours(2), 600, new DomainEnergies(60_000, 0, 0, 0, 0, 0), 100, ifaces: "estimate", estimated: true, model: "generic-per-core");
        // 1500: nothing measured.
        yield return JobRecord.NotMeasured(new Alumet.Hpc.Jobs.JobIdentity("slurm", "lab", "1500", "carol", 1003, "n4"), "no energy counter (RAPL absent, estimate off)", T.AddHours(3), T.AddHours(3).AddSeconds(30));
    }

    public (int Code, string Out, string Err) Run(int uid, string user, params string[] args) => Run(uid, user, ["root"], args);

    /// <summary>The caller's time zone for the next runs (UTC when null).</summary>
    public TimeZoneInfo? Zone { get; set; }

    public (int Code, string Out, string Err) Run(int uid, string user, string[] admins, params string[] args)
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        var env = new ReportEnvironment(uid, uid == 0 || admins.Contains(user), Db, o, e, Zone: Zone ?? TimeZoneInfo.Utc, NowUtc: Now);
        int code = ReportCommand.Run(args, env);
        return (code, o.ToString(), e.ToString());
    }

    public void Dispose() => Dir.Dispose();
}

public static class Golden
{
    /// <summary>Compares with tests/Alumet.Hpc.Tests/Golden/&lt;name&gt;; ALUMET_UPDATE_GOLDEN=1 rewrites the file instead.</summary>
    public static void Check(string name, string actual, [CallerFilePath] string caller = "")
    {
        string source = Path.Combine(Path.GetDirectoryName(caller)!, "..", "Golden", name);
        if (Environment.GetEnvironmentVariable("ALUMET_UPDATE_GOLDEN") == "1")
        {
            File.WriteAllText(source, actual);
            return;
        }
        string copied = Path.Combine(AppContext.BaseDirectory, "Golden", name);
        string expected = File.ReadAllText(File.Exists(copied) ? copied : source);
        Assert.Equal(expected, actual);
    }
}
