using System.Diagnostics;
using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Outputs;
using Xunit;

namespace Alumet.Hpc.Tests.Report;

/// <summary>
/// An installation as README's Install section makes it, with two ordinary users (created with useradd when missing):
/// the group alumet, a system config, the accounting database written by root (so 0640 root:alumet in a 0751
/// directory), the setgid gate built for this installation, and one job per user.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class TwoUsersInstallation : IDisposable
{
    public const string UserA = "alumet-rpt-a", UserB = "alumet-rpt-b";
    public string? SkipReason { get; }
    public TempDir Dir { get; } = new();
    public string Bin { get; } = "";
    public string Gate => Dir.Sub("bin/alumet-report");
    public string SystemConfig => Dir.Sub("etc/alumet.toml");
    public string Db => Dir.Sub("lib/accounting.db");
    public string DataDir => Dir.Sub("lib/data");
    public int UidA { get; }
    public int UidB { get; }

    public TwoUsersInstallation()
    {
        if (Environment.UserName != "root" || !File.Exists("/usr/sbin/runuser") || !File.Exists("/usr/sbin/useradd"))
        {
            SkipReason = "needs root, runuser and useradd";
            return;
        }
        try { Bin = TestInstallation.Binary(); }
        catch (FileNotFoundException) { SkipReason = "alumet-hpc binary not built"; return; }
        if (Sh("command -v gcc").Code != 0) { SkipReason = "needs gcc"; return; }

        Must(Sh("getent group alumet >/dev/null || groupadd --system alumet"));
        foreach (var u in new[] { UserA, UserB })
            Must(Sh($"id -u {u} >/dev/null 2>&1 || useradd --system --no-create-home --no-user-group --shell /usr/sbin/nologin {u}"));
        UidA = int.Parse(Must(Sh($"id -u {UserA}")).Trim());
        UidB = int.Parse(Must(Sh($"id -u {UserB}")).Trim());

        File.SetUnixFileMode(Dir.Path, (UnixFileMode)0b111_101_101);
        Directory.CreateDirectory(Dir.Sub("etc"));
        Directory.CreateDirectory(Dir.Sub("bin"));
        File.WriteAllText(SystemConfig, $"""
            [paths]
            database = "{Db}"
            data_dir = "{DataDir}"

            [report]
            admins = ["root"]
            """);
        var now = DateTime.UtcNow;
        using (var w = AccountingDb.Open(Db))
        {
            w.Upsert(ReportFixture.Rec("3001", "n1", UserA, UidA, now.AddMinutes(-2), 60, new DomainEnergies(6000, 0, 0, 600, 0, 0), 120) with
                { ParquetPath = $"{DataDir}/lab/slurm/3001/3001.n1.parquet" });
            w.Upsert(ReportFixture.Rec("3002", "n1", UserB, UidB, now.AddMinutes(-2), 60, new DomainEnergies(9000, 0, 0, 0, 0, 0), 150) with
                { ParquetPath = $"{DataDir}/lab/slurm/3002/3002.n1.parquet" });
            // Job id 3003 reused (a Slurm state reset): A's run three days ago on n1, then B's run on n2 a day later.
            // Both are outside today's default window, so the listings of the other tests do not show them.
            w.Upsert(ReportFixture.Rec("3003", "n1", UserA, UidA, now.AddDays(-3), 60, new DomainEnergies(3000, 0, 0, 0, 0, 0), 60) with
                { RunId = "A3003" });
            w.Upsert(ReportFixture.Rec("3003", "n2", UserB, UidB, now.AddDays(-2), 60, new DomainEnergies(4000, 0, 0, 0, 0, 0), 70) with
                { RunId = "B3003" });
        }
        string src = Path.Combine(RepoRoot(), "src", "report-gate", "alumet-report-gate.c");
        Must(Sh($"gcc -O2 -Wall -Wextra -Werror -DALUMET_HPC_BIN='\"{Bin}\"' -DALUMET_SYSTEM_CONFIG='\"{SystemConfig}\"' -o {Gate} {src}"
            + $" && chown root:alumet {Gate} && chmod 2755 {Gate}"));
    }

    /// <summary>Runs a command line as <paramref name="user"/> (runuser), from /, with a clean, known environment.</summary>
    public static (int Code, string Out, string Err) RunAs(string user, string file, params string[] args) =>
        Run("/usr/sbin/runuser", ["-u", user, "--", "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "HOME=/nonexistent", file, .. args]);

    public static (int Code, string Out, string Err) Sh(string script) => Run("/bin/sh", ["-c", script]);

    internal static (int Code, string Out, string Err) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }

    private static string Must((int Code, string Out, string Err) r) =>
        r.Code == 0 ? r.Out : throw new InvalidOperationException($"setup failed ({r.Code}): {r.Err}");

    public static string RepoRoot()
    {
        string dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Alumet.Hpc.sln"))) dir = Path.GetDirectoryName(dir)!;
        return dir;
    }

    public void Dispose() => Dir.Dispose();
}

/// <summary>Every route by which one ordinary user could read another's jobs, tried by both users in turn.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ReportAsUserTests : IClassFixture<TwoUsersInstallation>
{
    private readonly TwoUsersInstallation _i;
    public ReportAsUserTests(TwoUsersInstallation i) => _i = i;

    public static TheoryData<string, string, string, string> Users => new()
    {
        { TwoUsersInstallation.UserA, "3001", TwoUsersInstallation.UserB, "3002" },
        { TwoUsersInstallation.UserB, "3002", TwoUsersInstallation.UserA, "3001" },
    };

    [SkippableTheory, MemberData(nameof(Users))]
    public void GateShowsOwnJobOnly(string me, string mine, string other, string theirs)
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        var own = TwoUsersInstallation.RunAs(me, _i.Gate, "-j", mine, "-P", "-n", "-o", "JobID,User,Parquet");
        Assert.Equal((0, $"{mine}|{me}|{_i.DataDir}/lab/slurm/{mine}/{mine}.n1.parquet\n", ""), own);
        var all = TwoUsersInstallation.RunAs(me, _i.Gate, "-P", "-n", "-o", "JobID,User");
        Assert.Equal((0, $"{mine}|{me}\n", ""), all);
        var json = TwoUsersInstallation.RunAs(me, _i.Gate, "--json");
        Assert.Equal(0, json.Code);
        Assert.Contains(mine, json.Out);
        Assert.DoesNotContain(theirs, json.Out);
        Assert.DoesNotContain(other, json.Out);
        foreach (var args in new[] { new[] { "-j", theirs }, ["-u", other], ["-j", theirs, "--json"] })
        {
            var r = TwoUsersInstallation.RunAs(me, _i.Gate, [.. args, "-P", "-n"]);
            Assert.DoesNotContain(theirs, r.Out);
            Assert.DoesNotContain(other, r.Out + r.Err);
        }
    }

    [SkippableTheory, MemberData(nameof(Users))]
    public void UserSuppliedConfigOrDatabaseGrantsNothing(string me, string mine, string other, string theirs)
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        _ = mine;
        // The user's own config: admin of everything, pointing at the system database.
        string cfg = _i.Dir.Sub($"{me}.toml");
        File.WriteAllText(cfg, $"[paths]\ndatabase = \"{_i.Db}\"\n\n[report]\nadmins = [\"{me}\"]\n");
        foreach (var route in new[]
        {
            new[] { _i.Gate, "--config", cfg, "-j", theirs, "-P", "-n" },
            [_i.Gate, "-c", cfg, "-P", "-n", "-o", "JobID,User"],
            ["/usr/bin/env", $"ALUMET_HPC_CONFIG={cfg}", _i.Gate, "-j", theirs, "-P", "-n"],
            ["/usr/bin/env", $"ALUMET_HPC_CONFIG={cfg}", _i.Bin, "report", "-j", theirs, "-P", "-n"],
            ["/usr/bin/env", $"ALUMET_HPC_SYSTEM_CONFIG={cfg}", _i.Bin, "report", "-j", theirs, "-P", "-n"],
            [_i.Bin, "report", "--config", cfg, "-j", theirs, "-P", "-n"],
            [_i.Bin, "report", "--db", _i.Db, "-j", theirs, "-P", "-n"],
            [_i.Gate, "--db", _i.Dir.Sub("lib/../lib/accounting.db"), "-j", theirs, "-P", "-n"],
        })
        {
            var r = TwoUsersInstallation.RunAs(me, route[0], route[1..]);
            Assert.DoesNotContain(theirs + "|", r.Out);
            Assert.DoesNotContain(other, r.Out + r.Err);
            Assert.Single(r.Err.TrimEnd('\n').Split('\n')); // one line, no stack trace
        }
        // The system database through a path of the user's own (a symlink in a directory they own): refused.
        string link = _i.Dir.Sub($"{me}-link.db");
        File.CreateSymbolicLink(link, _i.Db);
        var viaLink = TwoUsersInstallation.RunAs(me, _i.Gate, "--db", link, "-P", "-n");
        Assert.Equal(1, viaLink.Code);
        Assert.Equal("", viaLink.Out);
        Assert.StartsWith($"alumet-report: error: cannot read {link}: ", viaLink.Err);
    }

    [SkippableTheory, MemberData(nameof(Users))]
    public void DatabaseFileAndDirectoryAreClosed(string me, string mine, string other, string theirs)
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        _ = (mine, other, theirs);
        Assert.Equal((UnixFileMode)0b110_100_000, File.GetUnixFileMode(_i.Db));
        Assert.Equal((UnixFileMode)0b111_101_001, File.GetUnixFileMode(Path.GetDirectoryName(_i.Db)!));
        Assert.Equal("root:alumet\n", TwoUsersInstallation.Sh($"stat -c %U:%G {_i.Db}").Out);
        Assert.NotEqual(0, TwoUsersInstallation.RunAs(me, "/bin/cat", _i.Db).Code);
        Assert.NotEqual(0, TwoUsersInstallation.RunAs(me, "/bin/ls", Path.GetDirectoryName(_i.Db)!).Code);
    }

    [SkippableFact]
    public void SetgidAlumetHpcGivesTheGroupUp()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        string copy = GroupCopy(_i.Bin, "bin/alumet-hpc-setgid", "2755");
        var r = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, copy, "report", "--db", _i.Db, "-P", "-n");
        Assert.Equal("", r.Out);
        Assert.Contains("alumet-hpc itself is set-id, so its group was given up", r.Err);
    }

    [SkippableFact]
    public void GatePassesOnlyAZoneNameToTheRuntime()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        // The gate built to run env(1) instead of alumet-hpc shows exactly the environment alumet-hpc would get.
        string gate = _i.Dir.Sub("bin/env-gate");
        var built = TwoUsersInstallation.Sh($"gcc -O2 -Wall -Wextra -Werror -DALUMET_HPC_BIN='\"/usr/bin/env\"' -o {gate} "
            + $"{Path.Combine(TwoUsersInstallation.RepoRoot(), "src", "report-gate", "alumet-report-gate.c")} && chown root:alumet {gate} && chmod 2755 {gate}");
        Assert.Equal(0, built.Code);
        var r = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, "/usr/bin/env",
            "DOTNET_gcServer=1", "LD_PRELOAD=/tmp/x.so", "SQLITE_TMPDIR=/tmp", "TMPDIR=/tmp", "ALUMET_HPC_CONFIG=/tmp/a.toml",
            "ALUMET_HPC_SYSTEM_CONFIG=/tmp/a.toml", "TZ=Europe/Paris", gate);
        Assert.Equal((0, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nTZ=Europe/Paris\n"), (r.Code, r.Out));
        var path = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, "/usr/bin/env", "TZ=:/home/x/zone", gate);
        Assert.Equal("PATH=/usr/sbin:/usr/bin:/sbin:/bin\n", path.Out); // a TZ file path is dropped
    }

    [SkippableFact]
    public void AdminsComeFromTheSystemConfigByUid()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        string cfg = File.ReadAllText(_i.SystemConfig);
        try
        {
            File.WriteAllText(_i.SystemConfig, cfg.Replace("admins = [\"root\"]", $"admins = [\"root\", \"{TwoUsersInstallation.UserB}\"]"));
            var b = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserB, _i.Gate, "-j", "3001,3002", "-P", "-n", "-o", "JobID,User");
            Assert.Equal((0, $"3001|{TwoUsersInstallation.UserA}\n3002|{TwoUsersInstallation.UserB}\n", ""), b);
            var a = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, _i.Gate, "-j", "3002", "-P", "-n");
            Assert.Equal("", a.Out);
        }
        finally
        {
            File.WriteAllText(_i.SystemConfig, cfg);
        }
    }

    /// <summary>
    /// README "Who sees what": the members of the system config's <c>[report] admin_groups</c> see every job (a
    /// supplementary group, matched by gid); a user outside the group still sees only their own.
    /// </summary>
    [SkippableFact]
    public void AdminGroupsComeFromTheSystemConfigByGid()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        const string group = "alumet-rpt-adm";
        Assert.Equal(0, TwoUsersInstallation.Sh($"getent group {group} >/dev/null || groupadd --system {group}").Code);
        Assert.Equal(0, TwoUsersInstallation.Sh($"gpasswd -a {TwoUsersInstallation.UserB} {group} >/dev/null").Code);
        string cfg = File.ReadAllText(_i.SystemConfig);
        try
        {
            var before = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserB, _i.Gate, "-j", "3001,3002", "-P", "-n", "-o", "JobID,User");
            Assert.Equal((0, $"3002|{TwoUsersInstallation.UserB}\n"), (before.Code, before.Out));
            File.WriteAllText(_i.SystemConfig, cfg + $"\nadmin_groups = [\"{group}\"]\n");
            var b = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserB, _i.Gate, "-j", "3001,3002", "-P", "-n", "-o", "JobID,User");
            Assert.Equal((0, $"3001|{TwoUsersInstallation.UserA}\n3002|{TwoUsersInstallation.UserB}\n", ""), b);
            var a = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, _i.Gate, "-j", "3002", "-P", "-n");
            Assert.Equal((0, ""), (a.Code, a.Out));
        }
        finally
        {
            File.WriteAllText(_i.SystemConfig, cfg);
            TwoUsersInstallation.Sh($"gpasswd -d {TwoUsersInstallation.UserB} {group} >/dev/null");
        }
    }

    /// <summary>
    /// README "alumet-report": the report gives up its group before it opens a job's Parquet files. The caller's own
    /// job's file, readable by the group alumet only, is refused to the caller (with the group it would be read).
    /// </summary>
    [SkippableFact]
    public void TheTimelineReadsTheJobsParquetFileWithTheCallersRightsOnly()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        string file = $"{_i.DataDir}/lab/slurm/3001/3001.n1.parquet";
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        try
        {
            GroupOnlyFile("timeline.parquet", "PAR1 not a Parquet file\n");
            File.Move(_i.Dir.Sub("lib/timeline.parquet"), file);
            var r = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, _i.Gate, "-j", "3001", "--timeline");
            Assert.Equal((1, "", $"alumet-report: error: cannot read the Parquet file(s) of job 3001: Access to the path '{file}' is denied.\n"), r);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>A file only the group alumet may read, as the report password file of README's PostgreSQL section.</summary>
    private string GroupOnlyFile(string name, string text)
    {
        string path = _i.Dir.Sub($"lib/{name}");
        File.WriteAllText(path, text);
        return GroupCopy(path, $"lib/{name}", "0640");
    }

    /// <summary><paramref name="source"/> copied to <paramref name="name"/> in the installation, root:alumet, <paramref name="mode"/>.</summary>
    private string GroupCopy(string source, string name, string mode)
    {
        string path = _i.Dir.Sub(name);
        if (source != path) File.Copy(source, path, overwrite: true);
        Assert.Equal(0, TwoUsersInstallation.Sh($"chown root:alumet {path} && chmod {mode} {path}").Code);
        return path;
    }

    /// <summary>
    /// System.CommandLine expands an argument "@FILE" into the file's words by default (response files): the gate's
    /// group read it, and the first word came back in the error. Now "@FILE" is an argument like any other.
    /// </summary>
    [SkippableFact]
    public void AnArgumentNeverReadsAFileWithTheGatesGroup()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        string secret = GroupOnlyFile("secret.txt", "S3cretWord\n");
        Assert.NotEqual(0, TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, "/bin/cat", secret).Code);
        foreach (var args in new[] { new[] { "@" + secret }, ["-j", "@" + secret], ["-P", "-n", "@" + secret] })
        {
            var r = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, _i.Gate, args);
            Assert.DoesNotContain("S3cretWord", r.Out + r.Err);
            Assert.Equal(2, r.Code);
        }
        Assert.Equal((2, "", $"alumet-report: error: Unrecognized command or argument '@{secret}'.\n"),
            TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, _i.Gate, "@" + secret));
    }

    /// <summary>
    /// On PostgreSQL the report password file is 0640 root:alumet (README). A --db naming the config's SQLite path kept
    /// the group (it is "the system database" by path), so "@FILE" read the read-only role's password with it:
    /// any user could then connect as that role and read every row. Now --db always gives the group up on PostgreSQL.
    /// </summary>
    [SkippableFact]
    public void OnPostgresNoRouteReadsTheReportPasswordWithTheGatesGroup()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        string password = GroupOnlyFile("db-report.password", "S3cretReportPw\n");
        string writer = _i.Dir.Sub("lib/db.password");
        File.WriteAllText(writer, "writerpw\n");
        File.SetUnixFileMode(writer, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        string cfg = File.ReadAllText(_i.SystemConfig);
        try
        {
            File.WriteAllText(_i.SystemConfig, cfg + $"""


                [database]
                url = "postgresql://alumet@127.0.0.1:1/alumet"
                password_file = "{writer}"
                report_url = "postgresql://alumet_report@127.0.0.1:1/alumet"
                report_password_file = "{password}"
                """);
            foreach (var args in new[]
            {
                new[] { "--db", _i.Db, "@" + password },
                ["--db=" + _i.Db, "-j", "@" + password],
                ["--db:" + _i.Db, "@" + password],
                ["@" + password],
            })
            {
                var r = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, _i.Gate, args);
                Assert.DoesNotContain("S3cretReportPw", r.Out + r.Err);
                Assert.Equal(2, r.Code);
            }
            // The SQLite file at [paths] database is not the system's database on PostgreSQL: read with the caller's rights.
            Assert.Equal((1, "", $"alumet-report: error: cannot read {_i.Db}: permission denied (it is readable by root and the group alumet only: "
                    + "run the alumet-report installed as README's Install section says, or ask an administrator)\n"),
                TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, _i.Gate, "--db", _i.Db, "-P", "-n", "-o", "JobID,User"));
        }
        finally
        {
            File.WriteAllText(_i.SystemConfig, cfg);
        }
    }

    /// <summary>
    /// System.CommandLine also takes "--db:PATH"; the gate's own scan knew only "--db PATH" and "--db=PATH", so a copy of
    /// the database that only the group may read was opened with the group.
    /// </summary>
    [SkippableFact]
    public void EverySpellingOfDbReadsWithTheCallersRights()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        string copy = GroupCopy(_i.Db, "lib/copy.db", "0640");
        string denied = $"alumet-report: error: cannot read {copy}: permission denied (it is readable by root and the group alumet only: "
            + "run the alumet-report installed as README's Install section says, or ask an administrator)\n";
        foreach (var db in new[] { new[] { "--db", copy }, ["--db=" + copy], ["--db:" + copy] })
            Assert.Equal((1, "", denied), TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, _i.Gate, [.. db, "-P", "-n", "-o", "JobID,User"]));
    }

    /// <summary>
    /// Job id 3003 ran for A, then (id reused) for B on another node. A's own run was hidden from A by B's later one
    /// (the latest-run rule looked at every user's runs), and -N matched B's nodes, so A learned where B's job ran.
    /// </summary>
    [SkippableFact]
    public void AnotherUsersRunOfTheSameJobIdNeitherHidesNorTellsAnything()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        string[] fields = ["-P", "-n", "-o", "JobID,User,NodeList,RunID"];
        var a = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, _i.Gate, ["-j", "3003", .. fields]);
        Assert.Equal((0, $"3003|{TwoUsersInstallation.UserA}|n1|A3003\n"), (a.Code, a.Out));
        var listing = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, _i.Gate, ["-S", "now-7days", "-X", .. fields]);
        Assert.Equal($"3001|{TwoUsersInstallation.UserA}|n1|\n3003|{TwoUsersInstallation.UserA}|n1|A3003\n", listing.Out);
        foreach (var runs in new[] { Array.Empty<string>(), ["--runs"] })
        {
            var onB = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, _i.Gate, ["-j", "3003", "-N", "n2", .. runs, .. fields]);
            Assert.Equal((0, ""), (onB.Code, onB.Out));
        }
        var b = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserB, _i.Gate, ["-j", "3003", .. fields]);
        Assert.Equal((0, $"3003|{TwoUsersInstallation.UserB}|n2|B3003\n"), (b.Code, b.Out));
        // An admin asking for A's jobs gets A's run (it used to be hidden by B's later run of the id, as for A).
        var adminForA = TwoUsersInstallation.Sh($"{_i.Bin} report --config {_i.SystemConfig} -u {TwoUsersInstallation.UserA} -S now-7days -X {string.Join(' ', fields)}");
        Assert.Equal($"3001|{TwoUsersInstallation.UserA}|n1|\n3003|{TwoUsersInstallation.UserA}|n1|A3003\n", adminForA.Out);
        // An admin still gets the latest run of the id, and every run with --runs.
        var root = TwoUsersInstallation.Sh($"{_i.Bin} report --config {_i.SystemConfig} -j 3003 {string.Join(' ', fields)}");
        Assert.Equal($"3003|{TwoUsersInstallation.UserB}|n2|B3003\n", root.Out);
        root = TwoUsersInstallation.Sh($"{_i.Bin} report --config {_i.SystemConfig} -j 3003 --runs {string.Join(' ', fields)}");
        Assert.Equal($"3003|{TwoUsersInstallation.UserA}|n1|A3003\n3003|{TwoUsersInstallation.UserB}|n2|B3003\n", root.Out);
    }

    /// <summary>
    /// An exec with an empty argument list (argc 0): the gate wrote its name into argv[0], which is then argv's NULL, so
    /// the caller's environment strings that follow became arguments (pkexec, CVE-2021-4034). Linux since 5.18 passes ""
    /// instead, and the gate ran the report as if called normally. Now both are refused, one sentence, exit 2.
    /// </summary>
    [SkippableFact]
    public void AnEmptyArgumentListIsRefusedBeforeAnythingElse()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        string src = _i.Dir.Sub("bin/noargv.c"), exe = _i.Dir.Sub("bin/noargv");
        File.WriteAllText(src, """
            #include <unistd.h>
            int main(int argc, char **argv)
            {
                char *none[] = { (char *)0 };
                char *env[] = { "PATH=/usr/bin:/bin", "-j3001", (char *)0 };
                if (argc != 2) return 126;
                execve(argv[1], none, env);
                return 127;
            }
            """);
        Assert.Equal(0, TwoUsersInstallation.Sh($"gcc -O2 -Wall -Wextra -Werror -o {exe} {src} && chmod 755 {exe}").Code);
        Assert.Equal((2, "", "alumet-report: error: started with an empty argument list (no program name); run it as alumet-report [OPTIONS]\n"),
            TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, exe, _i.Gate));
    }

    /// <summary>
    /// Root may point the report at any config with $ALUMET_HPC_CONFIG (ReportEntry; true of alumet-hpc report), but the
    /// installed gate cleared it for root too, so root's report read the system database. Kept for a real uid 0 only.
    /// </summary>
    [SkippableFact]
    public void TheGateKeepsAlumetHpcConfigForRootOnly()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        string db = _i.Dir.Sub("lib/other.db"), cfg = _i.Dir.Sub("etc/other.toml");
        using (var w = AccountingDb.Open(db))
            w.Upsert(ReportFixture.Rec("4001", "n9", TwoUsersInstallation.UserA, _i.UidA, DateTime.UtcNow.AddMinutes(-2), 60, new DomainEnergies(100, 0, 0, 0, 0, 0), 2));
        File.WriteAllText(cfg, $"[paths]\ndatabase = \"{db}\"\n");
        var root = TwoUsersInstallation.Sh($"ALUMET_HPC_CONFIG={cfg} {_i.Gate} -j 4001 -P -n -o JobID,User,NodeList");
        Assert.Equal((0, $"4001|{TwoUsersInstallation.UserA}|n9\n", ""), root);
        // Anyone else: dropped with the rest of the environment (the system database, where 4001 does not exist).
        var a = TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, "/usr/bin/env", $"ALUMET_HPC_CONFIG={cfg}", _i.Gate, "-j", "4001", "-P", "-n");
        Assert.Equal((0, "", $"alumet-report: note: job 4001 not found in {_i.Db} (or not yours)\n"), a);
    }

    /// <summary>
    /// -j of a reused job id shows its latest run, as sacct without -D; the earlier runs were hidden without a word. A
    /// note now counts them, among the runs the caller may see only: B's -j 3003 never tells that A ran 3003 before.
    /// </summary>
    [SkippableFact]
    public void AJobsEarlierRunsAreCountedInANoteAmongTheCallersOwn()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        string a = TwoUsersInstallation.UserA, b = TwoUsersInstallation.UserB;
        const string fields = "-P -n -o JobID,User,RunID";
        Assert.Equal((0, $"3003|{b}|B3003\n", "alumet-report: note: EARLIER RUNS: job 3003: 1 earlier run(s) of this job id not shown "
                + "(the latest run is, as sacct); --runs (sacct's -D) shows every run.\n"),
            TwoUsersInstallation.Sh($"{_i.Bin} report --config {_i.SystemConfig} -j 3003 {fields}"));
        Assert.Equal((0, $"3003|{a}|A3003\n3003|{b}|B3003\n", ""), TwoUsersInstallation.Sh($"{_i.Bin} report --config {_i.SystemConfig} -j 3003 --runs {fields}"));
        Assert.Equal((0, $"3003|{b}|B3003\n", ""), TwoUsersInstallation.RunAs(b, _i.Gate, ["-j", "3003", .. fields.Split(' ')]));
        Assert.Equal((0, $"3003|{a}|A3003\n", ""), TwoUsersInstallation.RunAs(a, _i.Gate, ["-j", "3003", .. fields.Split(' ')]));
    }

    /// <summary>sacct's -u/--uid/--user take user names or uids; a uid used to select nothing (it was compared with names).</summary>
    [SkippableFact]
    public void AnAdminSelectsUsersByNameOrUid()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        string Root(string users) => TwoUsersInstallation.Sh($"{_i.Bin} report --config {_i.SystemConfig} {users} -X -P -n -o JobID,User").Out;
        string a = TwoUsersInstallation.UserA, b = TwoUsersInstallation.UserB;
        Assert.Equal($"3001|{a}\n", Root($"-u {_i.UidA}"));
        Assert.Equal($"3001|{a}\n3002|{b}\n", Root($"-u {_i.UidA},{b}"));
        Assert.Equal($"3001|{a}\n3002|{b}\n", Root($"--uid {_i.UidB} -u {a}"));
        Assert.Equal("", Root("-u 4294967296"));
        // Not an admin: still only the caller's own jobs, whatever -u names.
        var r = TwoUsersInstallation.RunAs(a, _i.Gate, "-u", $"{_i.UidB}", "-X", "-P", "-n", "-o", "JobID,User");
        Assert.Equal((0, ""), (r.Code, r.Out));
    }

    /// <summary>
    /// A machine with the gate but no system database (a workstation): the report reads the caller's own database of
    /// <c>alumet-hpc exec</c>, which <c>exec</c> names ("alumet-report --job N"). The gate clears HOME, so the report never
    /// found it ("no accounting database at" the system path); the home now comes from the user database.
    /// </summary>
    [SkippableFact]
    public void WithoutASystemDatabaseTheGateReadsTheCallersOwnExecDatabase()
    {
        Skip.If(_i.SkipReason is not null, _i.SkipReason);
        string a = TwoUsersInstallation.UserA;
        string home = TwoUsersInstallation.Sh($"getent passwd {a} | cut -d: -f6").Out.Trim();
        Skip.If(home.Length < 2 || home[0] != '/', $"{a} has no home in the user database");
        bool made = !Directory.Exists(home);
        string cfg = File.ReadAllText(_i.SystemConfig);
        try
        {
            Assert.Equal(0, TwoUsersInstallation.Sh($"mkdir -p {home} && chown {a} {home}").Code);
            var exec = TwoUsersInstallation.Sh($"cd / && /usr/sbin/runuser -u {a} -- /usr/bin/env -i PATH=/usr/bin:/bin HOME={home} {_i.Bin} exec --job-id 9 --no-report -- /bin/true");
            Assert.True(exec.Code == 0, exec.Err);
            File.WriteAllText(_i.SystemConfig, cfg.Replace(_i.Db, _i.Dir.Sub("lib/none/accounting.db")));
            var r = TwoUsersInstallation.RunAs(a, _i.Gate, "-j", "9", "-P", "-n", "-o", "JobID,User");
            Assert.Equal((0, $"9|{a}\n"), (r.Code, r.Out));
        }
        finally
        {
            File.WriteAllText(_i.SystemConfig, cfg);
            if (made) Directory.Delete(home, recursive: true);
        }
    }
}

/// <summary>
/// A SQLite statement holds a shared lock on the database while it is stepped, which keeps every writer out (rollback
/// journal, README "Accounting database"). A listing written to a pipe that nobody reads blocked in the middle of its
/// statement: any user could keep root's hooks from storing rows for as long as they liked (notes/adversary.md).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ReportHoldsNoLockTests
{
    /// <summary>
    /// Fails on 6d2d27d: the root writer's upsert waits for the lock, then throws SQLite's "database is locked"
    /// (`Assert.Null() Failure` with that exception), while the user's report sits in pipe_write.
    /// </summary>
    [SkippableFact]
    public void AUsersListingBlockedOnItsOutputDoesNotKeepRootsWritersOut()
    {
        using var inst = new TwoUsersInstallation();
        Skip.If(inst.SkipReason is not null, inst.SkipReason);
        var start = DateTime.UtcNow.AddDays(-20);
        using (var w = AccountingDb.Open(inst.Db))
            for (int i = 0; i < 400; i++)
                w.Upsert(ReportFixture.Rec($"{5000 + i}", "n1", TwoUsersInstallation.UserA, inst.UidA, start.AddMinutes(i), 60,
                    new DomainEnergies(1000, 0, 0, 0, 0, 0), 100) with { RunId = $"R{i}" });

        // The user's listing (~1 MB of JSON) to a pipe this test never reads: the report blocks once the pipe is full.
        var psi = new ProcessStartInfo("/usr/sbin/runuser", ["-u", TwoUsersInstallation.UserA, "--", "/usr/bin/env", "-i", "PATH=/usr/bin:/bin",
            inst.Gate, "--json", "-S", "now-30days"]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        using var reader = Process.Start(psi)!;
        try
        {
            Assert.True(SpinWait.SpinUntil(() => BlockedWriting(inst.Bin), TimeSpan.FromSeconds(60)), "the report never blocked on its output");

            Exception? failure = null;
            var watch = Stopwatch.StartNew();
            try
            {
                using var w = AccountingDb.Open(inst.Db, busyTimeoutMs: 1000, waitMs: 2000);
                w.Upsert(ReportFixture.Rec("5999", "n1", TwoUsersInstallation.UserB, inst.UidB, DateTime.UtcNow, 60,
                    new DomainEnergies(1000, 0, 0, 0, 0, 0), 100), waitMs: 2000);
            }
            catch (Exception e) { failure = e; }
            Assert.Null(failure);
            Assert.True(watch.ElapsedMilliseconds < 1000, $"the upsert waited {watch.ElapsedMilliseconds} ms for the report's lock");
        }
        finally
        {
            reader.Kill(entireProcessTree: true);
            reader.WaitForExit();
        }
    }

    /// <summary>
    /// A temporary directory that cannot take the listing (TMPDIR names a file: a mistyped or stale TMPDIR) does not turn
    /// the spill off: the listing is kept in /tmp, so one blocked on its output keeps no writer out, and read, it is whole.
    /// Through the real entry point (the report of alumet-hpc). Fails on fa7e503: the spill was silently off, the report
    /// blocked in the middle of its statement, and the writer's upsert threw "database is locked" (`Assert.Null() Failure`).
    /// </summary>
    [Fact]
    public void ATemporaryDirectoryThatCannotTakeTheListingStillKeepsItOffTheDatabase()
    {
        using var install = Alumet.Hpc.Tests.Commands.ExecBinaryTests.NewInstall();
        string db = install.Config.Paths.Database;
        int uid = (int)Alumet.Hpc.Native.Libc.getuid();
        var start = DateTime.UtcNow.AddDays(-20);
        using (var w = AccountingDb.Open(db))
            for (int i = 0; i < 400; i++)
                w.Upsert(ReportFixture.Rec($"{5000 + i}", "n1", Environment.UserName, uid, start.AddMinutes(i), 60,
                    new DomainEnergies(1000, 0, 0, 0, 0, 0), 100) with { RunId = $"R{i}" });
        string notADirectory = install.PathOf("tmpdir-is-a-file");
        File.WriteAllText(notADirectory, "");
        ProcessStartInfo Listing() => new(TestInstallation.Binary(), ["report", "--config", install.ConfigPath, "--json", "-L", "-S", "now-30days"])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, Environment = { ["TMPDIR"] = notADirectory },
        };

        using (var reader = Process.Start(Listing())!) // to a pipe this test does not read: it blocks once the pipe is full
        {
            try
            {
                Assert.True(SpinWait.SpinUntil(() => WaitsOnAFullPipe(reader.Id), TimeSpan.FromSeconds(60)), "the report never blocked on its output");
                Exception? failure = null;
                try
                {
                    using var w = AccountingDb.Open(db, busyTimeoutMs: 1000, waitMs: 2000);
                    w.Upsert(ReportFixture.Rec("5999", "n1", Environment.UserName, uid, DateTime.UtcNow, 60, new DomainEnergies(1000, 0, 0, 0, 0, 0), 100), waitMs: 2000);
                }
                catch (Exception e) { failure = e; }
                Assert.Null(failure);
            }
            finally
            {
                reader.Kill(entireProcessTree: true);
                reader.WaitForExit();
            }
        }

        using var whole = Process.Start(Listing())!;
        var stderr = whole.StandardError.ReadToEndAsync();
        using var json = System.Text.Json.JsonDocument.Parse(whole.StandardOutput.ReadToEnd());
        whole.WaitForExit();
        Assert.Equal((0, "", 401), (whole.ExitCode, stderr.Result, json.RootElement.GetProperty("jobs").GetArrayLength()));
    }

    /// <summary>
    /// A user may stop their own report (kill -STOP: it is setgid, not setuid) while it reads the database. A reader
    /// blocks no writer (WAL, README "Accounting database"): the row of a job that ends meanwhile, written by root's
    /// real finalization (<c>alumet-hpc exec</c>: the node sampler's <c>finalize-job</c>, its <c>hook_wait_s</c> of 2 s
    /// and 1 s lock wait), is in the database when the job's command returns, not queued in the outbox; the stopped
    /// report, resumed, lists its rows; nothing in the database's directory belongs to the user. Fails on 13b113e
    /// (rollback journal: the stopped report's shared lock kept every writer out for as long as its user liked):
    /// "(0, 1)" where "(1, 0)" was expected (no row in the database, one queued in the outbox).
    /// </summary>
    [SkippableFact]
    public void AUsersReportStoppedWhileItReadsKeepsNoJobsRowOutOfTheDatabase()
    {
        using var inst = new TwoUsersInstallation();
        Skip.If(inst.SkipReason is not null, inst.SkipReason);
        using var node = Alumet.Hpc.Tests.Commands.ExecBinaryTests.NewInstall(); // root's node, writing the installation's database
        File.WriteAllText(node.ConfigPath, File.ReadAllText(node.ConfigPath).Replace(node.Config.Paths.Database, inst.Db));
        var start = DateTime.UtcNow.AddDays(-20);
        using (var w = AccountingDb.Open(inst.Db))
            for (int i = 0; i < 400; i++)
                w.Upsert(ReportFixture.Rec($"{5000 + i}", "n1", TwoUsersInstallation.UserA, inst.UidA, start.AddMinutes(i), 60,
                    new DomainEnergies(1000, 0, 0, 0, 0, 0), 100) with { RunId = $"R{i}" });
        string inode = TwoUsersInstallation.Sh($"stat -c %i {inst.Db}").Out.Trim();
        // In a read: a shared lock on the database and, in WAL mode, on one of the -shm's read marks (bytes 123-127).
        string? shm = File.Exists(inst.Db + "-shm") ? TwoUsersInstallation.Sh($"stat -c %i {inst.Db}-shm").Out.Trim() : null;
        bool Reading(int pid) => LockHolders(inode).Contains(pid) && (shm is null || LockHolders(shm, 123, 127).Contains(pid));

        Process? reader = null;
        Task<string>? listing = null;
        try
        {
            int holder = 0;
            for (int attempt = 0; attempt < 50 && holder == 0; attempt++)
            {
                reader = Process.Start(new ProcessStartInfo("/usr/sbin/runuser", ["-u", TwoUsersInstallation.UserA, "--", "/usr/bin/env", "-i",
                    "PATH=/usr/bin:/bin", inst.Gate, "--json", "-S", "now-30days"]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" })!;
                listing = reader.StandardOutput.ReadToEndAsync(); // read: this report is stopped, never blocked on its output
                _ = reader.StandardError.ReadToEndAsync();
                while (!reader.HasExited && holder == 0)
                {
                    if (LockHolder(inode) is not { } pid) continue;
                    Alumet.Hpc.Native.Libc.kill(pid, 19); // SIGSTOP, as the user may
                    if (Reading(pid)) holder = pid; // stopped in the middle of a read
                    else
                    {
                        Alumet.Hpc.Native.Libc.kill(pid, 18); // its read had just ended: let it finish, try again
                        Alumet.Hpc.Native.Libc.kill(reader.Id, 18);
                    }
                }
                if (holder == 0) reader.WaitForExit();
            }
            Assert.True(holder != 0, "no report was caught reading the database");

            AJobsRowGoesStraightToTheDatabase(inst, node);

            Alumet.Hpc.Native.Libc.kill(holder, 18); // SIGCONT
            Alumet.Hpc.Native.Libc.kill(reader!.Id, 18); // runuser stops itself when its child stops, as su does
            Assert.True(reader!.WaitForExit(60_000), "the resumed report did not end");
            using var json = System.Text.Json.JsonDocument.Parse(listing!.Result);
            Assert.Equal((0, 402), (reader.ExitCode, json.RootElement.GetProperty("jobs").GetArrayLength())); // and 3001, 3003
            var foreign = TwoUsersInstallation.Sh($"find {Path.GetDirectoryName(inst.Db)} -maxdepth 1 ! -user root").Out;
            Assert.Equal("", foreign);
        }
        finally
        {
            if (reader is { HasExited: false })
            {
                reader.Kill(entireProcessTree: true);
                foreach (int pid in LockHolders(inode)) { Alumet.Hpc.Native.Libc.kill(pid, 9); }
                reader.WaitForExit();
            }
        }
    }

    /// <summary>
    /// The sqlite3 shell, closing the database last, deletes the WAL's files (it does not keep them as alumet-hpc's
    /// writers do). A user's report then does not make them (they would be the user's, in root's directory: a user who
    /// owned the -shm could lock root's writers out) but says why, exit 1; the next root writer makes them again.
    /// </summary>
    [SkippableFact]
    public void AReportDoesNotMakeTheWalFilesItFindsMissing()
    {
        using var inst = new TwoUsersInstallation();
        Skip.If(inst.SkipReason is not null, inst.SkipReason);
        Skip.IfNot(DbLock.Available, "needs the sqlite3 CLI");
        string[] query = ["-j", "3001", "-P", "-n", "-o", "JobID"];
        Assert.Equal((0, "3001\n", ""), TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, inst.Gate, query));
        Assert.Equal(0, TwoUsersInstallation.Sh($"/usr/bin/sqlite3 {inst.Db} 'SELECT count(*) FROM jobs;'").Code);
        Assert.Equal((false, false), (File.Exists(inst.Db + "-wal"), File.Exists(inst.Db + "-shm")));

        Assert.Equal((1, "", $"alumet-report: error: cannot read {inst.Db}: its -wal and -shm files are missing (a program other than alumet-hpc, "
            + "such as sqlite3, closed it last); the next job end on this node, or 'alumet-hpc db flush' run by root, makes them again\n"),
            TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, inst.Gate, query));
        Assert.Equal("", TwoUsersInstallation.Sh($"find {Path.GetDirectoryName(inst.Db)} -maxdepth 1 ! -user root").Out);

        using (AccountingDb.Open(inst.Db)) { }
        Assert.Equal((0, "3001\n", ""), TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, inst.Gate, query));
    }

    /// <summary>
    /// A user's report stopped (kill -STOP) with the database open and no read under way: before its first read (it
    /// has opened the database and holds its lock on the file, but none on the WAL's index, the -shm) or between two.
    /// With no writer in the database when it opened, SQLite rebuilds the index from the -wal in the report's own memory
    /// before each read: the longer the -wal, the longer that window (400 rows here). No writer waits for it: a job
    /// ending meanwhile through root's real finalization has its row in the database when the job's command returns,
    /// none in the outbox, and the report, resumed, lists the rows.
    /// </summary>
    [SkippableFact]
    public void AUsersReportStoppedBeforeAReadKeepsNoJobsRowOutOfTheDatabase()
    {
        using var inst = new TwoUsersInstallation();
        Skip.If(inst.SkipReason is not null, inst.SkipReason);
        using var node = NodeWriting(inst);
        var start = DateTime.UtcNow.AddDays(-20);
        // 400 rows in the -wal: a root reader in a read over the writes keeps every checkpoint from them.
        using (var snapshot = AccountingDb.OpenReadOnly(inst.Db))
        using (var reading = snapshot.Stream(new JobQuery()).GetEnumerator())
        {
            Assert.True(reading.MoveNext());
            using var w = AccountingDb.Open(inst.Db);
            for (int i = 0; i < 400; i++)
                w.Upsert(ReportFixture.Rec($"{5000 + i}", "n1", TwoUsersInstallation.UserA, inst.UidA, start.AddMinutes(i), 60,
                    new DomainEnergies(1000, 0, 0, 0, 0, 0), 100) with { RunId = $"R{i}" });
        }
        Assert.InRange(new FileInfo(inst.Db + "-wal").Length, 400 * 4096, long.MaxValue);
        string inode = TwoUsersInstallation.Sh($"stat -c %i {inst.Db}").Out.Trim();
        string shm = TwoUsersInstallation.Sh($"stat -c %i {inst.Db}-shm").Out.Trim();
        bool OpenNotReading(int pid) => LockHolders(inode).Contains(pid) && !LockHolders(shm).Contains(pid);

        (int Runuser, Task<(int Code, string Out, string Err)> Done) report = default;
        int holder = 0;
        try
        {
            for (int attempt = 0; attempt < 50 && holder == 0; attempt++)
            {
                report = StartReport(inst, ["--json", "-S", "now-30days"]);
                while (!report.Done.IsCompleted && holder == 0)
                {
                    int pid = LockHolders(inode).FirstOrDefault(p => !LockHolders(shm).Contains(p));
                    if (pid == 0) continue;
                    Alumet.Hpc.Native.Libc.kill(pid, 19); // SIGSTOP, as the user may
                    SpinWait.SpinUntil(() => !File.Exists($"/proc/{pid}/stat") || Stopped(pid), TimeSpan.FromSeconds(10));
                    if (OpenNotReading(pid)) holder = pid; // stopped with the database open, not reading
                    else
                    {
                        Alumet.Hpc.Native.Libc.kill(pid, 18); // its read had begun: let it finish, try again
                        Alumet.Hpc.Native.Libc.kill(report.Runuser, 18);
                    }
                }
                if (holder == 0) Ended(report.Done);
            }
            Assert.True(holder != 0, "no report was caught with the database open and no read under way");

            AJobsRowGoesStraightToTheDatabase(inst, node);

            Alumet.Hpc.Native.Libc.kill(holder, 18); // SIGCONT
            Alumet.Hpc.Native.Libc.kill(report.Runuser, 18); // runuser stops itself when its child stops, as su does
            var listing = Ended(report.Done!);
            holder = 0;
            using var json = System.Text.Json.JsonDocument.Parse(listing.Out);
            Assert.Equal((0, 402), (listing.Code, json.RootElement.GetProperty("jobs").GetArrayLength())); // and 3001, 3003
        }
        finally
        {
            if (holder != 0) Alumet.Hpc.Native.Libc.kill(holder, 9);
        }
    }

    /// <summary>
    /// A root writer killed (SIGKILL) in the middle of its recovery of the WAL's index (the -shm, which the first writer
    /// to open the database rebuilds from the -wal) while a user's report waits for that recovery: SQLite lets the
    /// report, whose access to the -shm is read-only, neither finish the recovery nor wait for a writer
    /// (SQLITE_READONLY_RECOVERY), as long as any process has the database open, the report itself included. The report
    /// opens the database again: alone, SQLite rebuilds the index in the report's own memory from the -wal, and it lists
    /// the row committed only there. The next root writer (<c>db flush</c>) recovers and keeps every committed row. Fails
    /// on 69c27c5: the report exits 1 with "cannot read …: SQLite Error 8: 'attempt to write a readonly database'.".
    /// </summary>
    [SkippableFact]
    public void AReportThatMeetsARecoveryAKilledWriterLeftReadsEveryCommittedRow()
    {
        using var inst = new TwoUsersInstallation();
        Skip.If(inst.SkipReason is not null, inst.SkipReason);
        using var writer = WriterStoppedInItsRecovery(inst, out var node, out string shm);
        using var _ = node;
        try
        {
            var report = StartReport(inst, Job3004);
            Assert.True(SpinWait.SpinUntil(() => LockHolders(shm, 128, 128).Any(p => p != writer.Id), TimeSpan.FromSeconds(60)),
                "the report never opened the WAL's index");
            Alumet.Hpc.Native.Libc.kill(writer.Id, 9);
            writer.WaitForExit();
            Assert.Equal((0, "3004\n", ""), Ended(report.Done));
        }
        finally { if (!writer.HasExited) { writer.Kill(); writer.WaitForExit(); } }
        RootsNextWriterKeepsEveryRow(inst, node);
    }

    /// <summary>
    /// The same recovery left by a killed writer, while another report (stopped by its user) has the database open: no
    /// read-only reader can read it then. The report says so in one sentence, exit 1, and how it is fixed; the next root
    /// writer recovers it, and reports read every committed row again, the stopped one too once resumed. Fails on 69c27c5:
    /// "cannot read …: SQLite Error 8: 'attempt to write a readonly database'.".
    /// </summary>
    [SkippableFact]
    public void AReportThatCannotReadARecoveryAKilledWriterLeftSaysHowItIsMade()
    {
        int stopped = 0; // the other report's pid while it is stopped
        using var inst = new TwoUsersInstallation();
        Skip.If(inst.SkipReason is not null, inst.SkipReason);
        using var writer = WriterStoppedInItsRecovery(inst, out var node, out string shm);
        using var _ = node;
        try
        {
            var other = StartReport(inst, ["-j", "3002", "-P", "-n", "-o", "JobID"], TwoUsersInstallation.UserB);
            Assert.True(SpinWait.SpinUntil(() => (stopped = LockHolders(shm, 128, 128).FirstOrDefault(p => p != writer.Id)) != 0,
                TimeSpan.FromSeconds(60)), "the other report never opened the WAL's index");
            Alumet.Hpc.Native.Libc.kill(stopped, 19); // SIGSTOP, as its user may
            var report = StartReport(inst, Job3004);
            Assert.True(SpinWait.SpinUntil(() => LockHolders(shm, 128, 128).Any(p => p != writer.Id && p != stopped), TimeSpan.FromSeconds(60)),
                "the report never opened the WAL's index");
            Alumet.Hpc.Native.Libc.kill(writer.Id, 9);
            writer.WaitForExit();
            Assert.Equal((1, "", $"alumet-report: error: cannot read {inst.Db}: its -wal needs a recovery that only root can make (a writer "
                + "was killed while it made it, and another process has the database open); the next job end on this node, or "
                + "'alumet-hpc db flush' run by root, makes it\n"), Ended(report.Done));

            RootsNextWriterKeepsEveryRow(inst, node);
            Alumet.Hpc.Native.Libc.kill(stopped, 18); // SIGCONT
            Alumet.Hpc.Native.Libc.kill(other.Runuser, 18); // runuser stops itself when its child stops, as su does
            Assert.Equal((0, "3002\n", ""), Ended(other.Done));
            stopped = 0;
        }
        finally
        {
            if (stopped != 0) { Alumet.Hpc.Native.Libc.kill(stopped, 9); }
            if (!writer.HasExited) { writer.Kill(); writer.WaitForExit(); }
        }
    }

    /// <summary>
    /// A job ending now through root's real finalization (<c>alumet-hpc exec</c>: the node sampler's <c>finalize-job</c>,
    /// its <c>hook_wait_s</c> of 2 s and 1 s lock wait) has its row in the database when the job's command returns, none
    /// queued in the outbox.
    /// </summary>
    private static void AJobsRowGoesStraightToTheDatabase(TwoUsersInstallation inst, TestInstallation node)
    {
        string jobId = ExecIds.Next();
        var job = TwoUsersInstallation.Run(TestInstallation.Binary(), "exec", "--config", node.ConfigPath, "--job-id", jobId, "--no-report", "--", "/bin/true");
        Assert.True(job.Code == 0, job.Err);
        string outbox = Path.Combine(node.Config.Paths.StateDir, "outbox");
        int stored;
        using (var db = AccountingDb.OpenReadOnly(inst.Db)) stored = db.GetJob(jobId).Count;
        Assert.Equal((1, 0), (stored, Directory.Exists(outbox) ? Directory.GetFiles(outbox, "*.row.json").Length : 0));
    }

    /// <summary>Root's next writer (<c>db flush</c>) rebuilds the WAL's index and keeps every committed row; user A reads job 3004.</summary>
    private static void RootsNextWriterKeepsEveryRow(TwoUsersInstallation inst, TestInstallation node)
    {
        Assert.Equal(0, TwoUsersInstallation.Run(inst.Bin, "db", "flush", "--config", node.ConfigPath).Code);
        using (var db = AccountingDb.OpenReadOnly(inst.Db))
            Assert.Equal("3001 3002 3003 3003 3004", string.Join(' ', db.Query(new JobQuery(Runs: RunSelection.All)).Select(r => r.JobId).Order(StringComparer.Ordinal)));
        Assert.Equal((0, "3004\n", ""), TwoUsersInstallation.RunAs(TwoUsersInstallation.UserA, inst.Gate, Job3004));
    }

    private static readonly string[] Job3004 = ["-j", "3004", "-P", "-n", "-o", "JobID"];

    /// <summary>A node of root's (alumet-hpc's real commands) whose accounting database is the installation's.</summary>
    private static TestInstallation NodeWriting(TwoUsersInstallation inst)
    {
        var node = Alumet.Hpc.Tests.Commands.ExecBinaryTests.NewInstall();
        File.WriteAllText(node.ConfigPath, File.ReadAllText(node.ConfigPath).Replace(node.Config.Paths.Database, inst.Db));
        return node;
    }

    /// <summary>
    /// User A's job 3004, committed and only in the -wal (as a writer killed after its commit leaves it: a root reader
    /// open over the write keeps the writer's close from checkpointing), then root's <c>alumet-hpc db flush</c>, the first
    /// to open the database since, stopped (SIGSTOP, by the LD_PRELOAD shim Fakes/stop_at_lock.c) as it takes the WAL's
    /// recovery lock (byte 122 of the -shm): in the middle of rebuilding the -shm from the -wal, which it emptied first.
    /// </summary>
    private static Process WriterStoppedInItsRecovery(TwoUsersInstallation inst, out TestInstallation node, out string shmInode)
    {
        node = NodeWriting(inst);
        using (var snapshot = AccountingDb.OpenReadOnly(inst.Db))
        using (var w = AccountingDb.Open(inst.Db))
            w.Upsert(ReportFixture.Rec("3004", "n1", TwoUsersInstallation.UserA, inst.UidA, DateTime.UtcNow.AddMinutes(-1), 60,
                new DomainEnergies(1000, 0, 0, 0, 0, 0), 100));
        Assert.True(new FileInfo(inst.Db + "-wal").Length > 0, "the row is not in the -wal");
        shmInode = TwoUsersInstallation.Sh($"stat -c %i {inst.Db}-shm").Out.Trim();
        string shim = Alumet.Hpc.Tests.Fakes.Nvml.FakeNvml.CompileShared(Path.Combine(AppContext.BaseDirectory, "Fakes", "stop_at_lock.c"),
            inst.Dir.Sub("stop_at_lock.so"));
        var psi = new ProcessStartInfo(inst.Bin, ["db", "flush", "--config", node.ConfigPath])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/",
            Environment = { ["LD_PRELOAD"] = shim, ["ALUMET_TEST_STOP_AT_LOCK"] = "-shm:122" },
        };
        var writer = Process.Start(psi)!;
        _ = writer.StandardOutput.ReadToEndAsync();
        _ = writer.StandardError.ReadToEndAsync();
        if (!SpinWait.SpinUntil(() => writer.HasExited || Stopped(writer.Id), TimeSpan.FromSeconds(60)))
            Assert.Fail("the writer never took the WAL's recovery lock");
        Assert.False(writer.HasExited, "the writer ended without a recovery");
        return writer;
    }

    /// <summary>Whether process <paramref name="pid"/> is stopped (its state in /proc/PID/stat, after the command's name).</summary>
    private static bool Stopped(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('T');
    }

    /// <summary>A report through the gate as <paramref name="user"/> (user A by default), read to its end in the background.</summary>
    private static (int Runuser, Task<(int Code, string Out, string Err)> Done) StartReport(TwoUsersInstallation inst, string[] args, string user = TwoUsersInstallation.UserA)
    {
        var p = Process.Start(new ProcessStartInfo("/usr/sbin/runuser", ["-u", user, "--", "/usr/bin/env", "-i", "PATH=/usr/bin:/bin",
            "HOME=/nonexistent", inst.Gate, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" })!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        return (p.Id, Task.Run(async () =>
        {
            await p.WaitForExitAsync();
            var result = (p.ExitCode, await output, await error);
            p.Dispose();
            return result;
        }));
    }

    private static (int Code, string Out, string Err) Ended(Task<(int Code, string Out, string Err)> report) =>
        report.Wait(TimeSpan.FromSeconds(60)) ? report.Result : throw new TimeoutException("the report did not end within 60 s");

    /// <summary>The processes holding a POSIX lock on the file of <paramref name="inode"/> (/proc/locks), starting between
    /// <paramref name="from"/> and <paramref name="to"/>, this one excepted.</summary>
    private static IEnumerable<int> LockHolders(string inode, long from = 0, long to = long.MaxValue) =>
        File.ReadAllLines("/proc/locks").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length > 7 && f[1] == "POSIX" && f[5].EndsWith($":{inode}", StringComparison.Ordinal)
                && long.Parse(f[6], System.Globalization.CultureInfo.InvariantCulture) is var start && start >= from && start <= to)
            .Select(f => int.Parse(f[4], System.Globalization.CultureInfo.InvariantCulture)).Where(p => p != Environment.ProcessId).Distinct().ToList();

    private static int? LockHolder(string inode) => LockHolders(inode).Cast<int?>().FirstOrDefault();

    /// <summary>Whether process <paramref name="pid"/> sleeps writing to a full pipe (/proc/PID/wchan).</summary>
    private static bool WaitsOnAFullPipe(int pid)
    {
        try { if (File.ReadAllText($"/proc/{pid}/wchan").EndsWith("pipe_write", StringComparison.Ordinal)) return true; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        Thread.Sleep(50);
        return false;
    }

    /// <summary>Whether a process of <paramref name="binary"/> sleeps writing to a full pipe (/proc/PID/wchan).</summary>
    private static bool BlockedWriting(string binary)
    {
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            try
            {
                if (File.ResolveLinkTarget(Path.Combine(dir, "exe"), false)?.FullName != binary) continue;
                if (File.ReadAllText(Path.Combine(dir, "wchan")).EndsWith("pipe_write", StringComparison.Ordinal)) return true; // anon_pipe_write on 6.x
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        Thread.Sleep(50);
        return false;
    }
}
