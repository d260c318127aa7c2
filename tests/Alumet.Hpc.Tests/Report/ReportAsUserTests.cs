using System.Diagnostics;
using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Outputs;
using Xunit;

namespace Alumet.Hpc.Tests.Report;

/// <summary>The real binary, run as an unprivileged user against a root-written database in a 0755 directory.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ReportAsUserTests
{
    private const int Nobody = 65534;

    [SkippableFact]
    public void UnprivilegedUserReadsOwnJobAndCannotSeeOthers()
    {
        Skip.IfNot(Environment.UserName == "root" && File.Exists("/usr/sbin/runuser"), "needs root and runuser");
        string bin;
        try { bin = TestInstallation.Binary(); }
        catch (FileNotFoundException) { throw new SkipException("alumet-hpc binary not built"); }

        using var tmp = new TempDir();
        File.SetUnixFileMode(tmp.Path, (UnixFileMode)0b111_101_101);
        string db = tmp.Sub("acct.db");
        var t = new DateTime(2026, 11, 25, 8, 0, 0, DateTimeKind.Utc);
        using (var w = AccountingDb.Open(db))
        {
            w.Upsert(ReportFixture.Rec("2000", "n1", "nobody", Nobody, t, 60, new DomainEnergies(6000, 0, 0, 600, 0, 0), 120));
            w.Upsert(ReportFixture.Rec("2001", "n1", "alice", 1001, t, 60, new DomainEnergies(9000, 0, 0, 0, 0, 0), 150));
        }

        var own = RunAsNobody(bin, "report", "--db", db, "-j", "2000", "-P", "-n", "-o", "JobID,User,TotalEnergy");
        Assert.Equal((0, "2000|nobody|6.60K\n", ""), own);
        var other = RunAsNobody(bin, "report", "--db", db, "-j", "2001", "-P", "-n");
        var missing = RunAsNobody(bin, "report", "--db", db, "-j", "2002", "-P", "-n");
        Assert.Equal((1, "", $"alumet-report: error: job 2001 not found in {db} (or not yours)\n"), other);
        Assert.Equal(other.Err.Replace("2001", "2002"), missing.Err);
        var all = RunAsNobody(bin, "report", "--db", db, "-P", "-n", "-o", "JobID");
        Assert.Equal((0, "2000\n", ""), all);
    }

    private static (int Code, string Out, string Err) RunAsNobody(string bin, params string[] args)
    {
        var psi = new ProcessStartInfo("/usr/sbin/runuser", ["-u", "nobody", "--", bin, .. args])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/",
        };
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }
}
