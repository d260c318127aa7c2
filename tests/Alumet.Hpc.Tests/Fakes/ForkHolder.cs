using System.Runtime.InteropServices;
using Alumet.Hpc.Tests.Fakes.Nvml;

namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// Copies of the test host that hold every descriptor it had when they were made (forkhold/fork_hold.c): the child that
/// Process.Start forks holds the host's descriptors from its fork to its execve; a copy here holds them for a set time.
/// The copies run no managed code; <see cref="Dispose"/> kills and reaps those still there. A copy holds the host's
/// pipes and flock'ed files too: the tests that make them run alone (<see cref="AloneCollection"/>).
/// </summary>
public sealed class ForkHolder : IDisposable
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl, SetLastError = true)]
    private delegate int ForkHold(int ms);

    private static readonly Lazy<ForkHold> Native = new(Load, LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly List<int> _pids = [];
    private readonly int _holdMs;
    private Thread? _thread;
    private volatile bool _stop;

    /// <param name="holdMs">How long each copy holds the descriptors.</param>
    public ForkHolder(int holdMs) => _holdMs = holdMs;

    /// <summary>One copy now; its pid.</summary>
    public int Hold()
    {
        int pid = Native.Value(_holdMs);
        if (pid < 0) throw new InvalidOperationException($"clone: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        lock (_pids)
        {
            _pids.Add(pid);
            _made++;
        }
        return pid;
    }

    /// <summary>
    /// A new copy every <paramref name="everyMs"/> ms (and the time a fork of the host takes), on a thread of its own,
    /// until <see cref="Dispose"/>; returns once the first copies are made.
    /// </summary>
    public ForkHolder Continuously(int everyMs)
    {
        _thread = new Thread(() =>
        {
            try
            {
                while (!_stop)
                {
                    Hold();
                    Reap(wait: false);
                    Thread.Sleep(everyMs);
                }
            }
            catch (Exception e) { _failed = e; }
        }) { Name = "fork-holder", IsBackground = true };
        _thread.Start();
        var end = DateTime.UtcNow.AddSeconds(10);
        while (Made < 2 && _failed is null && DateTime.UtcNow < end) Thread.Sleep(1);
        if (_failed is not null || Made < 2) throw new InvalidOperationException($"no copies of the test host made: {_failed?.Message}");
        return this;
    }

    private int _made;
    private volatile Exception? _failed;

    /// <summary>How many copies were made.</summary>
    public int Made
    {
        get { lock (_pids) return _made; }
    }

    public void Dispose()
    {
        _stop = true;
        _thread?.Join();
        lock (_pids) foreach (int pid in _pids) kill(pid, 9);
        Reap(wait: true);
        if (_failed is not null) throw new InvalidOperationException("making copies of the test host failed", _failed);
    }

    private void Reap(bool wait)
    {
        lock (_pids)
        {
            // ECHILD: reaped already (by the runtime's SIGCHLD handling when it reaps every child).
            _pids.RemoveAll(pid => waitpid(pid, IntPtr.Zero, wait ? 0 : WNOHANG) is var r && (r == pid || r < 0));
        }
    }

    private const int WNOHANG = 1;

    [DllImport("libc", SetLastError = true)]
    private static extern int waitpid(int pid, IntPtr status, int options);

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);

    private static ForkHold Load()
    {
        string source = Path.Combine(AppContext.BaseDirectory, "Fakes", "forkhold", "fork_hold.c");
        string dir = Directory.CreateTempSubdirectory("alumet-fork-hold-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        };
        string library = FakeNvml.CompileShared(source, Path.Combine(dir, "libforkhold.so"));
        return Marshal.GetDelegateForFunctionPointer<ForkHold>(NativeLibrary.GetExport(NativeLibrary.Load(library), "alumet_fork_hold"));
    }
}
