using System.Runtime.InteropServices;
using System.Text;
using Alumet.Hpc.Native;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// A sampler (<c>sample</c>, <c>node-sampler</c>, in either binary) under a tiny RLIMIT_NOFILE: its runtime, config,
/// log, spool, sources and <c>finalize-job</c> child each need descriptors, and at 8 or fewer it ended with nothing said
/// and no row, or (4-5) with the runtime's stack trace from the first Console write (a dup of stderr). It raises its
/// own soft limit up to the hard one (its children inherit it) and, when even that is below <see cref="Needed"/>,
/// says so in one sentence written straight to descriptor 2 and does not start.
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
    public static unsafe bool Ensure(string program)
    {
        ulong* limit = stackalloc ulong[2]; // rlim_cur, rlim_max
        if (Libc.getrlimit(Libc.RLIMIT_NOFILE, limit) != 0 || limit[0] >= Needed) return true;
        ulong soft = limit[0];
        if (limit[1] > soft)
        {
            limit[0] = Math.Min(limit[1], Math.Max(Raised, Needed));
            if (Libc.setrlimit(Libc.RLIMIT_NOFILE, limit) == 0 && limit[0] >= Needed) return true;
        }
        Say($"{program}: error: too few file descriptors (RLIMIT_NOFILE is {soft}, hard limit {Show(limit[1])}; a sampler needs at least {Needed}): raise it where the sampler is started (ulimit -n {Raised}, or LimitNOFILE= in its service)");
        return false;
    }

    private static string Show(ulong max) => max == ulong.MaxValue ? "unlimited" : max.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>One line to descriptor 2 without opening another (Console's stderr is a dup of it); nothing if it is closed.</summary>
    public static unsafe void Say(string line)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(line + "\n");
        fixed (byte* p = bytes)
        {
            for (nuint done = 0; done < (nuint)bytes.Length;)
            {
                nint n = Libc.write(2, p + done, (nuint)bytes.Length - done);
                if (n < 0 && Marshal.GetLastPInvokeError() == Libc.EINTR) continue;
                if (n <= 0) return;
                done += (nuint)n;
            }
        }
    }
}
