using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Alumet.Hpc.Attribution;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// The exec job ids of the tests (<see cref="ExecIds"/>): an exec as root makes its cgroup exec_ID under the machine's
/// real cgroup root, shared by every test class running at the same time.
/// </summary>
public class ExecIdsTests
{
    /// <summary>
    /// Two classes' execs at once, as ExecBinaryTests (an exec held for a whole test) and ReportNativeTests (a short
    /// exec on its own installation) run them: both run. With the id both classes gave on 13b113e (61), the second is
    /// refused: "exit 2: alumet-hpc: exec: exec job 61 is already running (another exec holds its cgroup
    /// /sys/fs/cgroup/cpuacct/alumet/exec_61); give another --job-id (nothing was measured)".
    /// </summary>
    [Fact]
    public void TwoClassesExecsAtOnceBothRun()
    {
        if (Environment.UserName != "root" || ExecCgroup.Hierarchy("/sys/fs/cgroup") is null) return; // no exec cgroup here
        using var holding = ExecBinaryTests.NewInstall();
        string held = ExecIds.Next();
        using var running = new ExecBinaryTests.RunningExec(holding, held, "--no-report");
        ExecBinaryTests.WaitFor(() => File.Exists(Path.Combine(holding.Config.Paths.StateDir, "exec", held, Alumet.Hpc.Jobs.JobRegistration.File)), "the held exec's registration");

        using var other = ExecBinaryTests.NewInstall();
        string id = ExecIds.Next();
        using var p = Process.Start(new ProcessStartInfo(TestInstallation.Binary(), ["exec", "--config", other.ConfigPath, "--job-id", id, "--no-report", "--", "true"])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}: {stderr}");
        Assert.True(running.Finish().ExitCode == 0, "the held exec");
    }

    /// <summary>Calls from many threads never get the same id; each is this process's (pid × PerProcess + n), far above
    /// the ids an installation's own exec counter picks (1, 2, ...).</summary>
    [Fact]
    public void IdsAreUniqueAcrossThreadsAndThisProcesssOwn()
    {
        var ids = new ConcurrentBag<string>();
        Parallel.For(0, 8, _ => { for (int i = 0; i < 25; i++) ids.Add(ExecIds.Next()); });
        Assert.Equal(200, ids.Distinct().Count());
        Assert.All(ids, id => Assert.Equal(Environment.ProcessId, long.Parse(id) / ExecIds.PerProcess));
        Assert.All(ids, id => Assert.True(Alumet.Hpc.Schedulers.SchedulerInput.IsJobId(id), id));
    }

    /// <summary>An id that an installation outliving test processes holds (an e2e lab's) is skipped, the next one given.</summary>
    [Fact]
    public void AnIdTheCallerSaysIsTakenIsSkipped()
    {
        var asked = new List<string>();
        string id = ExecIds.Next(candidate =>
        {
            asked.Add(candidate);
            return asked.Count == 1; // the first: a row of the lab's from an earlier test process of the same pid
        });
        Assert.Equal(2, asked.Count);
        Assert.Equal(asked[1], id);
        Assert.True(long.Parse(id) > long.Parse(asked[0]), $"{id} after {asked[0]}"); // the counter's next (another class's call may come between)
    }

    /// <summary>
    /// No test gives exec an id of its own choosing (a digits literal) where exec would make its cgroup under the machine's
    /// cgroup root: as ExecCommand.Run's, RunningExec's or a class's Exec helper's id, or after "--job-id" in an exec
    /// command line. Lines with a generated cgroup tree (lab.) or run as another user (RunAs, runuser: no cgroup) are not
    /// the machine's. On a484096 it lists 47 such lines in 9 files, ReportNativeTests' 61 and ExecBinaryTests' 61 among them.
    /// Nor an id read from the clock (an integer of DateTime.UtcNow, Environment.TickCount or Stopwatch.GetTimestamp made
    /// text): on 69c27c5, SlurmE2ETests' exec beside a Slurm job (its milliseconds modulo 10^9).
    /// </summary>
    [Fact]
    public void EveryExecIdATestGivesComesFromExecIds()
    {
        if (TestSources.Root() is not { } tests) return; // no source tree beside the tests
        var literal = new Regex(@"(ExecCommand\.Run|RunningExec|\bExec)\(\s*[\w.]+\s*,\s*""\d+""|""exec"",.*""--job-id"",\s*""\d+""");
        var clock = new Regex(@"(\b(Utc)?Now\.(Ticks|ToUnixTime\w*\(\))|Environment\.TickCount|Stopwatch\.GetTimestamp\(\)).*\.ToString\(");
        var found = TestSources.Lines(tests)
            .Where(l => (literal.IsMatch(l.Text) || clock.IsMatch(l.Text)) && !l.Text.StartsWith("//", StringComparison.Ordinal)
                        && !l.Text.Contains("lab.", StringComparison.Ordinal) && !l.Text.Contains("RunAs(", StringComparison.Ordinal)
                        && !l.Text.Contains("runuser", StringComparison.Ordinal))
            .Select(l => $"{l.File}:{l.Line}: {l.Text}").ToList();
        Assert.True(found.Count == 0, $"{found.Count} exec id(s) not from ExecIds.Next():\n{string.Join("\n", found)}");
    }
}
