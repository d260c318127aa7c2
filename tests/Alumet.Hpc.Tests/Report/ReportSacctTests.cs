using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Report;
using Alumet.Hpc.Tests.Outputs;
using Microsoft.Data.Sqlite;
using Xunit;

namespace Alumet.Hpc.Tests.Report;

/// <summary>sacct's flags, formats and conventions, through the real command line (in-process).</summary>
public sealed class ReportSacctTests : IClassFixture<ReportFixture>
{
    private readonly ReportFixture _f;
    private const int Alice = 1001;

    public ReportSacctTests(ReportFixture f)
    {
        _f = f;
        _f.Zone = null;
    }

    private string Ids(params string[] args) => _f.Run(0, "root", [.. args, "-X", "-P", "-n", "-o", "JobID"]).Out.Replace('\n', ' ').Trim();

    [Fact]
    public void DefaultWindowIsTheCallersJobsSinceMidnight()
    {
        // now = 2026-11-25 23:00 UTC: alice's jobs of the day, for alice and for root (admins need -a, as in sacct).
        Assert.Equal("1234 1400", _f.Run(Alice, "alice", "-X", "-P", "-n", "-o", "JobID").Out.Replace('\n', ' ').Trim());
        Assert.Equal("", Ids());
        Assert.Equal("1234 1300 1400 1500", Ids("-a"));
        // A non-admin's -a still shows only their own jobs.
        Assert.Equal("1234 1400", _f.Run(Alice, "alice", "-a", "-X", "-P", "-n", "-o", "JobID").Out.Replace('\n', ' ').Trim());
    }

    [Fact]
    public void StartAndEndTimeSelectJobsThatOverlapTheWindow()
    {
        // 1234 08:00-09:01, 1300 09:00-(next day 10:01), 1400 10:00-10:10, 1500 11:00-11:00:30 (2026-11-25, UTC)
        Assert.Equal("1300 1400 1500", Ids("-a", "-S", "2026-11-25T09:30"));
        Assert.Equal("1234 1300", Ids("-a", "-S", "2026-11-25", "-E", "2026-11-25T09:30:00"));
        Assert.Equal("1300", Ids("-a", "-S", "1126", "-E", "1127"));
        Assert.Equal("1300", Ids("-a", "-S", "11/26/26"));
        Assert.Equal("1300 1400 1500", Ids("-a", "-S", "now-13hours"));
        Assert.Equal("1300 1400 1500", Ids("-a", "-S", "10:00"));
        Assert.Equal("1234 1300 1400 1500", Ids("-a", "-S", "midnight", "-E", "noon"));
        // -j without -S: any time (sacct: epoch); with -S the window applies.
        Assert.Equal("1234", Ids("-j", "1234"));
        Assert.Equal("", Ids("-j", "1234", "-S", "now-1hours"));
        var bad = _f.Run(0, "root", "-S", "yesterday-ish");
        Assert.Equal(2, bad.Code);
        Assert.StartsWith("alumet-report: error: invalid time 'yesterday-ish' (use YYYY-MM-DD[THH:MM[:SS]], MMDD[YY]", bad.Err);
        Assert.Equal(2, _f.Run(0, "root", "-S", "2026-11-26", "-E", "2026-11-25").Code);
    }

    [Theory]
    [InlineData("2026-11-20", "2026-11-20T00:00:00")]
    [InlineData("2026-11-20T14:05", "2026-11-20T14:05:00")]
    [InlineData("2026-11-20T14:05:09", "2026-11-20T14:05:09")]
    [InlineData("1120", "2026-11-20T00:00:00")]
    [InlineData("112025", "2025-11-20T00:00:00")]
    [InlineData("11/20", "2026-11-20T00:00:00")]
    [InlineData("11.20.24", "2024-11-20T00:00:00")]
    [InlineData("14:05", "2026-11-25T14:05:00")]
    [InlineData("2:05pm", "2026-11-25T14:05:00")]
    [InlineData("12:30AM", "2026-11-25T00:30:00")]
    [InlineData("now", "2026-11-25T23:00:00")]
    [InlineData("now-2days", "2026-11-23T23:00:00")]
    [InlineData("now-90", "2026-11-25T22:58:30")]
    [InlineData("now+1hour", "2026-11-26T00:00:00")]
    [InlineData("now-1weeks", "2026-11-18T23:00:00")]
    [InlineData("today", "2026-11-25T00:00:00")]
    [InlineData("midnight", "2026-11-25T00:00:00")]
    [InlineData("noon", "2026-11-25T12:00:00")]
    [InlineData("teatime", "2026-11-25T16:00:00")]
    [InlineData("tomorrow", "2026-11-26T00:00:00")]
    public void SacctTimeFormats(string text, string expectedUtc) =>
        Assert.Equal(expectedUtc, SacctTime.Parse(text, ReportFixture.Now, TimeZoneInfo.Utc).ToString("yyyy-MM-dd'T'HH:mm:ss"));

    [Theory]
    [InlineData("2026-13-01")]
    [InlineData("25:00")]
    [InlineData("13:00pm")]
    [InlineData("1340")]
    [InlineData("now-")]
    [InlineData("now-3fortnights")]
    [InlineData("")]
    public void BadTimesAreFormatErrors(string text) =>
        Assert.Throws<FormatException>(() => SacctTime.Parse(text, ReportFixture.Now, TimeZoneInfo.Utc));

    [Fact]
    public void TimesAreLocalLikeSacctAndUtcOnRequest()
    {
        var paris = TimeZoneInfo.FindSystemTimeZoneById("Europe/Paris");
        _f.Zone = paris;
        var local = _f.Run(0, "root", "-j", "1400", "-X", "-P", "-n", "-o", "Start,End");
        Assert.Equal("2026-11-25T11:00:00|2026-11-25T11:10:00\n", local.Out); // UTC+1 in November
        Assert.Equal("2026-11-25T10:00:00|2026-11-25T10:10:00\n", _f.Run(0, "root", "-j", "1400", "-X", "-P", "-n", "-o", "Start,End", "--utc").Out);
        // -S is read in the caller's zone too: 11:05 Paris = 10:05 UTC, inside 1400 (10:00-10:10 UTC).
        Assert.Equal("1300\n1400\n", _f.Run(0, "root", "-a", "-S", "2026-11-25T11:05", "-E", "2026-11-25T11:06", "-X", "-P", "-n", "-o", "JobID").Out);
        _f.Zone = null;
    }

    [Fact]
    public void UsersStatesNodesAndClusters()
    {
        Assert.Equal("1300", Ids("-u", "bob"));
        Assert.Equal("1234 1300 1400", Ids("-u", "alice", "-u", "bob"));
        Assert.Equal("1234 1300 1400", Ids("-u", "alice,bob"));
        Assert.Equal("1300", Ids("-a", "-s", "partial"));
        Assert.Equal("1234 1400 1500", Ids("-a", "-s", "COMPLETE,not_measured"));
        Assert.Equal(2, _f.Run(0, "root", "-a", "-s", "RUNNING").Code);
        // -N: jobs with a row on the node; a multi-node job keeps all its nodes.
        // NodeList in sacct's ranged form.
        Assert.Equal("1300|n[1-2]\n", _f.Run(0, "root", "-a", "-N", "n2", "-X", "-P", "-n", "-o", "JobID,NodeList").Out);
        Assert.Equal("1234 1300 1400", Ids("-a", "-N", "n[1-3]"));
        Assert.Equal("1500", Ids("-a", "--nodelist", "n4"));
        Assert.Equal(2, _f.Run(0, "root", "-a", "-N", "n[3-1]").Code);
        Assert.Equal(["n01", "n02", "n10"], HostList.Expand("n[01-02,10]"));
        // A bracket holding a comma, as the help advertises (n[1-4,7]), and a list of such expressions.
        Assert.Equal("1234 1300 1400", Ids("-a", "-N", "n[1,3]"));
        Assert.Equal("1234 1300 1400 1500", Ids("-a", "-N", "n[3-4],n[1,9]"));
        Assert.Equal("n[1-3,7]", HostList.Compress(["n3", "n1", "n2", "n7"]));
        Assert.Equal("n[01-02,10],gpu[1,3],login", HostList.Compress(["n10", "gpu1", "n01", "login", "gpu3", "n02"]));
        Assert.Equal("n[9-10]", HostList.Compress(["n9", "n10"]));
        Assert.Equal("n5", HostList.Compress(["n5"]));
        Assert.Equal("node", HostList.Compress(["node"]));
        // Several jobs: repeated -j and --jobs.
        Assert.Equal("1400 1234", Ids("-j", "1400", "--jobs", "1234"));
    }

    [Fact]
    public void EnergyFieldsUnitsAndBlankDomains()
    {
        var p = _f.Run(0, "root", "-j", "1234,1400,1500", "-X", "-P", "-n", "-o", "JobID,ConsumedEnergy,ConsumedEnergyRaw,ElapsedRaw,DramEnergy,GpuEnergy,CoreEnergy").Out;
        // 1400 is an estimate (no DRAM, no GPU): blank, not 0; 1500 was not measured: every energy blank.
        Assert.Equal("1234|3.79M|3791357.391|3661|56.79K|2.50M|800K\n1400|60K|60000|600|||\n1500|||30|||\n", p);
        Assert.Equal("1234|3791.36K|3791.36K|2500.00K\n",
            _f.Run(0, "root", "-j", "1234", "-X", "-P", "-n", "-o", "JobID,TotalEnergy,ConsumedEnergy%20,GpuEnergy", "--units=K").Out);
        Assert.Equal("1234|0.00T\n", _f.Run(0, "root", "-j", "1234", "-X", "-P", "-n", "-o", "JobID,TotalEnergy", "--units", "t").Out);
        Assert.Equal(2, _f.Run(0, "root", "--units", "X").Code);
    }

    [Fact]
    public void DelimiterHelpFormatAndName()
    {
        Assert.Equal("1234;alice;\n", _f.Run(0, "root", "-j", "1234", "-X", "-p", "-n", "-o", "JobID,User", "--delimiter", ";").Out);
        Assert.Equal("JobID::User\n1234::alice\n", _f.Run(0, "root", "-j", "1234", "-X", "-P", "-o", "JobID,User", "--delimiter=::").Out);
        var e = _f.Run(0, "root", "-e");
        Assert.Equal(0, e.Code);
        Assert.StartsWith("JobID               JobName             Cluster             User\n", e.Out);
        Assert.Contains("ConsumedEnergyRaw", e.Out);
        foreach (var f in ReportFields.All) Assert.Contains(f.Name, e.Out);
        // Rows recorded without a name (older versions, Slurm without SLURM_JOB_NAME) match no --name.
        Assert.Equal("", Ids("-a", "-S", "2026-01-01", "--name", "sim"));
        Assert.Equal("1234 1300 1400 1500", Ids("-a", "-S", "2026-01-01"));
        // Step lines show the step's name as sacct does (batch, extern), nothing for a numbered step.
        Assert.Equal("1234||\n1234.batch|batch|\n1234.0||\n", _f.Run(0, "root", "-j", "1234", "-p", "-n", "-o", "JobID,JobName").Out);
    }

    [Fact]
    public void JsonIsShapedLikeSacct()
    {
        var (code, output, _) = _f.Run(0, "root", "-j", "1234,1300", "--json");
        Assert.Equal(0, code);
        using var doc = System.Text.Json.JsonDocument.Parse(output);
        var jobs = doc.RootElement.GetProperty("jobs");
        var j = jobs[0];
        Assert.Equal(1234, j.GetProperty("job_id").GetInt64());
        Assert.Equal("alice", j.GetProperty("user").GetString());
        Assert.Equal(new DateTimeOffset(2026, 11, 25, 8, 0, 0, TimeSpan.Zero).ToUnixTimeSeconds(), j.GetProperty("time").GetProperty("start").GetInt64());
        var tres = j.GetProperty("tres").GetProperty("consumed").GetProperty("total")[0];
        Assert.Equal("energy", tres.GetProperty("type").GetString());
        Assert.Equal(3791357, tres.GetProperty("count").GetInt64());
        Assert.Equal(["1234.batch", "1234.0"], j.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("step").GetProperty("id").GetString()));
        Assert.Equal(2_500_000, j.GetProperty("energy").GetProperty("gpu").GetDouble());
        Assert.Equal(System.Text.Json.JsonValueKind.Null, jobs[1].GetProperty("energy").GetProperty("gpu").ValueKind); // not measured
        Assert.Equal(2, jobs[1].GetProperty("node_lines").GetArrayLength());
        Assert.Equal(0, doc.RootElement.GetProperty("errors").GetArrayLength());
    }

    [Fact]
    public void StreamsEveryRowBeyondTenThousand()
    {
        // The old report stopped at 10 000 rows without a word, dropping the newest jobs.
        using var tmp = new TempDir();
        string db = tmp.Sub("big.db");
        using (AccountingDb.Open(db)) { }
        using (var con = new SqliteConnection($"Data Source={db};Pooling=false"))
        {
            con.Open();
            using var cmd = con.CreateCommand();
            cmd.CommandText = """
                WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 10050)
                INSERT INTO jobs (cluster, scheduler, job_id, node, user, uid, start_time, end_time, elapsed_s, energy_package_j, total_energy_j,
                    interfaces, status, run_id)
                SELECT 'lab', 'slurm', i, 'n1', 'alice', 1001, '2026-11-25T08:00:00.000000Z', '2026-11-25T08:01:00.000000Z', 60, i, i,
                    'powercap', 'complete', '20261125T080000000Z' FROM c;
                """;
            cmd.ExecuteNonQuery();
        }
        var o = new StringWriter();
        var e = new StringWriter();
        int code = ReportCommand.Run(["-a", "-P", "-n", "-o", "JobID", "--db", db],
            new ReportEnvironment(0, true, db, o, e, NowUtc: ReportFixture.Now, Zone: TimeZoneInfo.Utc));
        Assert.Equal(0, code);
        var ids = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(10050, ids.Length);
        Assert.Equal("10050", ids[^1]);
    }

    [Fact]
    public void TimestampsOfAnyPrecisionAreRead()
    {
        // A start time with milliseconds (another writer, an older version) made the report throw FormatException.
        using var tmp = new TempDir();
        string db = tmp.Sub("p.db");
        using (var w = AccountingDb.Open(db))
            w.Upsert(ReportFixture.Rec("77", "n1", "alice", Alice, new DateTime(2026, 11, 25, 8, 0, 0, DateTimeKind.Utc), 60, new DomainEnergies(600, 0, 0, 0, 0, 0), 10));
        using (var con = new SqliteConnection($"Data Source={db};Pooling=false"))
        {
            con.Open();
            using var cmd = con.CreateCommand();
            cmd.CommandText = "UPDATE jobs SET start_time = '2026-11-25T08:00:00.123Z', end_time = '2026-11-25T08:01:00.123456789Z';";
            cmd.ExecuteNonQuery();
        }
        var o = new StringWriter();
        var e = new StringWriter();
        int code = ReportCommand.Run(["-j", "77", "-P", "-n", "-o", "JobID,Start,End"], new ReportEnvironment(0, true, db, o, e, Zone: TimeZoneInfo.Utc));
        Assert.Equal((0, "77|2026-11-25T08:00:00|2026-11-25T08:01:00\n", ""), (code, o.ToString(), e.ToString()));
    }
}
