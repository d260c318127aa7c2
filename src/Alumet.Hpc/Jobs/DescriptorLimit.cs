using System.Text;
using Alumet.Hpc.Native;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// A sampler (<c>sample</c>, <c>node-sampler</c>, in either binary) under a tiny RLIMIT_NOFILE: its runtime, config,
/// log, spool, sources and <c>finalize-job</c> child each need descriptors, and at 8 or fewer it ended with nothing said
/// and no row, or (4-5) with the runtime's stack trace from the first Console write (a dup of stderr). It raises its
/// own soft limit up to the hard one (its children inherit it) and, when even that is below <see cref="Needed"/>,
/// says so in one sentence written straight to descriptor 2 and does not start. A hook raises its own the same way
/// (HookHost.Run) and goes on whatever it got: at a soft limit of 8 a prolog could not start the node sampler and its
/// job was recorded not_measured.
/// </summary>
public static class DescriptorLimit
{
    /// <summary>Enough for a lone job's sampler and its finalization (a <c>sample</c> with the estimate source failed at
    /// 16 and worked at 20), with room (SampleBinaryTests.ASamplerRaisesASmallSoftLimitAndMeasuresTheJob samples a job
    /// at exactly this limit); a node sampler's later jobs that find none left fail one by one, said in the log.</summary>
    public const ulong Needed = 32;

    /// <summary>The soft limit it raises a smaller one to (the hard limit permitting): the usual default.</summary>
    private const ulong Raised = 1024;

    /// <summary>Exit code of a sampler that did not start: a failed run.</summary>
    public const int ExitCode = 1;

    /// <summary>True when the limit is (now) at least <see cref="Needed"/>; otherwise the sentence is on stderr, prefixed
    /// by <paramref name="program"/>.</summary>
    public static bool Ensure(string program)
    {
        var (before, soft, hard) = Raise();
        if (soft >= Needed) return true;
        Say($"{program}: error: too few file descriptors (RLIMIT_NOFILE is {before}, hard limit {Show(hard)}; a sampler needs at least {Needed}): raise it where the sampler is started (ulimit -n {Raised}, or LimitNOFILE= in its service)");
        return false;
    }

    /// <summary>
    /// A soft limit below <see cref="Needed"/> raised toward the hard one (to <see cref="Raised"/> at most): the soft limit
    /// found, and the soft and hard limits now. The hooks call it too (HookHost.Run), and never refuse: they go on with
    /// what they have and exit 0; a process they then cannot start is said in one sentence (ErrorText).
    /// </summary>
    public static unsafe (ulong Before, ulong Soft, ulong Hard) Raise()
    {
        ulong* limit = stackalloc ulong[2]; // rlim_cur, rlim_max
        if (Libc.getrlimit(Libc.RLIMIT_NOFILE, limit) != 0) return (ulong.MaxValue, ulong.MaxValue, ulong.MaxValue);
        ulong before = limit[0];
        if (before < Needed && limit[1] > before)
        {
            limit[0] = Math.Min(limit[1], Math.Max(Raised, Needed));
            if (Libc.setrlimit(Libc.RLIMIT_NOFILE, limit) != 0) limit[0] = before;
        }
        return (before, limit[0], limit[1]);
    }

    /// <summary>The soft and hard limits now (for a sentence that names them), or null.</summary>
    public static unsafe (ulong Soft, ulong Hard)? Current()
    {
        ulong* limit = stackalloc ulong[2];
        return Libc.getrlimit(Libc.RLIMIT_NOFILE, limit) == 0 ? (limit[0], limit[1]) : null;
    }

    public static string Show(ulong max) => max == ulong.MaxValue ? "unlimited" : max.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>One line to descriptor 2 without opening another (Console's stderr is a dup of it); nothing if it is closed.</summary>
    public static void Say(string line) => Libc.WriteAll(2, Encoding.UTF8.GetBytes(line + "\n"));
}
