using System.Globalization;
using Alumet.Hpc.Attribution;

namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// The job id of every test's <c>alumet-hpc exec</c> (as root, on an installation whose cgroup_root is the machine's).
/// Such an exec makes its cgroup <c>exec_ID</c> under the machine's real cgroup root (<see cref="ExecCgroup"/>), which
/// every test class running at the same time shares, and so do the test processes of other checkouts on the machine:
/// an exec given a --job-id whose cgroup another exec holds is refused (exit 2), as it must be. An id from here is this
/// process's pid times <see cref="PerProcess"/> plus a counter of the process: no two live test processes (distinct
/// pids) nor two calls of one process get the same id, and none is one of the small ids an installation's own exec
/// counter picks (from 1, in each state_dir). An id whose exec cgroup exists now (left by a killed run, or of a
/// process of another pid namespace) is skipped.
/// </summary>
public static class ExecIds
{
    /// <summary>Ids per test process: the suite gives a few hundred.</summary>
    public const int PerProcess = 10_000;

    private static int _last;

    /// <summary>Where exec puts its cgroups on this machine (&lt;hierarchy&gt;/alumet), or null where it has none.</summary>
    private static readonly string? ExecParent = ExecCgroup.Hierarchy("/sys/fs/cgroup") is var (hierarchy, _)
        ? Path.Combine(hierarchy, ExecCgroup.Parent) : null;

    /// <summary>A job id no other exec of this machine's test processes is given.</summary>
    public static string Next() => Next(static _ => false);

    /// <summary>
    /// The same, skipping the ids <paramref name="taken"/> says are taken: those an installation that outlives test
    /// processes already holds (an e2e lab's database and state dir; a later test process may have an earlier one's pid).
    /// </summary>
    public static string Next(Func<string, bool> taken)
    {
        while (true)
        {
            int n = Interlocked.Increment(ref _last);
            if (n >= PerProcess) throw new InvalidOperationException($"more than {PerProcess - 1} exec ids in one test process: raise ExecIds.PerProcess");
            string id = ((long)Environment.ProcessId * PerProcess + n).ToString(CultureInfo.InvariantCulture);
            if ((ExecParent is null || !Directory.Exists(Path.Combine(ExecParent, ExecCgroup.Name(id)))) && !taken(id)) return id;
        }
    }
}
