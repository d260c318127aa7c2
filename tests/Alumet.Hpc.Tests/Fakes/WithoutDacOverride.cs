using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// Runs code as root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, on a thread of its own: Linux capabilities are
/// per thread and capset(2) changes the caller's only, so the test's other threads keep them. There a directory of mode
/// 0311 cannot be listed (opendir: EACCES) while the files in it open through it (search permission; they are root's),
/// which chmod alone cannot do to root: a listing that fails with an error other than ENOENT, on the real code path (as
/// under an LSM, or a unit that drops those capabilities).
/// </summary>
public static class WithoutDacOverride
{
    public static void Run(Action action)
    {
        Exception? failed = null;
        var t = new Thread(() =>
        {
            try
            {
                Drop();
                action();
            }
            catch (Exception e) { failed = e; }
        }) { Name = "no-dac-override" };
        t.Start();
        t.Join();
        if (failed is not null) ExceptionDispatchInfo.Throw(failed);
    }

    private const uint Version3 = 0x20080522; // _LINUX_CAPABILITY_VERSION_3: two data words
    private const int DacOverride = 1, DacReadSearch = 2;

    [StructLayout(LayoutKind.Sequential)]
    private struct Header
    {
        public uint Version;
        public int Pid; // 0: the calling thread
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Data
    {
        public uint Effective, Permitted, Inheritable;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int capget(ref Header header, [In, Out] Data[] data);

    [DllImport("libc", SetLastError = true)]
    private static extern int capset(ref Header header, [In] Data[] data);

    private static void Drop()
    {
        var header = new Header { Version = Version3 };
        var data = new Data[2];
        if (capget(ref header, data) != 0) throw new InvalidOperationException($"capget: errno {Marshal.GetLastPInvokeError()}");
        data[0].Effective &= ~((1u << DacOverride) | (1u << DacReadSearch));
        header = new Header { Version = Version3 };
        if (capset(ref header, data) != 0) throw new InvalidOperationException($"capset: errno {Marshal.GetLastPInvokeError()}");
    }
}
