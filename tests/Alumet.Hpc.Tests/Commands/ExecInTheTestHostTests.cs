using Alumet.Hpc.Attribution;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// The tests' <c>alumet-hpc exec</c> runs out of the test host (<see cref="ExecBinary"/>): as root, exec moves the
/// process that runs it into the command's cgroup while it forks the command, and in the test host that process is every
/// running test's.
/// </summary>
[Collection(AloneCollection.Name)] // its watcher spins on a CPU while the execs run
public class ExecInTheTestHostTests
{
    /// <summary>Execs watched: the host is in the cgroup for the fork of the command only; on 69c27c5 the watcher saw it
    /// there in the first to the fourth exec of each run.</summary>
    private const int Execs = 15;

    /// <summary>
    /// While the tests' exec runs, the test host's pid is never in the exec's cgroup.procs (watched from a thread of
    /// the host), and the host's cgroups are the same after it. With ExecCommand.Run in the test host, as the tests ran
    /// exec on 69c27c5, the watcher sees the host in the cgroup of one of the first few.
    /// </summary>
    [Fact]
    public void TheTestsExecNeverPutsTheTestHostInItsCgroup()
    {
        if (Environment.UserName != "root" || ExecCgroup.Hierarchy("/sys/fs/cgroup") is not var (hierarchy, _)) return; // no exec cgroup here
        using var install = new TestInstallation(PowercapTree.Standard(1));
        string host = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string before = File.ReadAllText("/proc/self/cgroup");
        var seen = new List<string>();
        for (int i = 0; i < Execs && seen.Count == 0; i++)
        {
            string id = ExecIds.Next();
            string procs = Path.Combine(hierarchy, ExecCgroup.Parent, ExecCgroup.Name(id), "cgroup.procs");
            bool done = false, hostIn = false;
            var watcher = new Thread(() =>
            {
                while (!Volatile.Read(ref done) && !hostIn)
                {
                    try { hostIn = File.ReadAllLines(procs).Contains(host); }
                    catch (IOException) { } // not made yet, or removed
                }
            }) { Name = "cgroup-watcher" };
            watcher.Start();
            var (rc, _, stderr) = ExecBinary.Exec(install, id, ["true"]);
            Volatile.Write(ref done, true);
            watcher.Join();
            Assert.True(rc == 0, $"exit {rc}: {stderr}");
            if (hostIn) seen.Add(id);
        }
        Assert.True(seen.Count == 0, $"the test host (pid {host}) was in the cgroup of exec {seen.FirstOrDefault()}");
        Assert.Equal(before, File.ReadAllText("/proc/self/cgroup"));
    }

    /// <summary>No test calls ExecCommand.Run (exec in the test host). On 69c27c5 it lists 10 calls in 4 files.</summary>
    [Fact]
    public void NoTestRunsExecInTheTestHost()
    {
        if (TestSources.Root() is not { } tests) return; // no source tree beside the tests
        string call = "ExecCommand" + ".Run(";
        var found = TestSources.Lines(tests)
            .Where(l => l.Text.Contains(call, StringComparison.Ordinal) && !l.Text.StartsWith("//", StringComparison.Ordinal))
            .Select(l => $"{l.File}:{l.Line}: {l.Text}").ToList();
        Assert.True(found.Count == 0, $"{found.Count} call(s) of exec in the test host, not through ExecBinary:\n{string.Join("\n", found)}");
    }
}
