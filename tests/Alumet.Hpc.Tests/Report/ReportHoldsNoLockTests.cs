using System.Diagnostics;
using Alumet.Hpc.Outputs;
using Alumet.Hpc.Outputs.Accounting;
using Xunit;

namespace Alumet.Hpc.Tests.Report;

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
