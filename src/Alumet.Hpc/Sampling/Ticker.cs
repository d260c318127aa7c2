using Alumet.Hpc.Native;

namespace Alumet.Hpc.Sampling;

/// <summary>
/// Fixed-rate ticks on absolute CLOCK_MONOTONIC deadlines (clock_nanosleep TIMER_ABSTIME) with the thread's
/// timer slack lowered to 1 ns. PeriodicTimer and Thread.Sleep(1) cannot hold 1 kHz with HZ=250; this held
/// 1000.0 Hz with ~30 µs mean lateness on the project's machine (docs/implementation-notes.md). Absolute deadlines mean lateness
/// never accumulates: a late tick is followed by an on-time one. When more than a whole period is lost (machine
/// stalled), the missed deadlines are skipped and counted rather than fired in a burst.
/// </summary>
public sealed class Ticker
{
    private readonly long _periodNs;
    private long _nextNs;

    public long PeriodNs => _periodNs;
    public long Missed { get; private set; }

    public Ticker(double hz)
    {
        if (hz is <= 0 or > 10_000) throw new ArgumentOutOfRangeException(nameof(hz), hz, "rate must be in (0, 10000] Hz");
        _periodNs = (long)Math.Round(1e9 / hz);
        Libc.prctl(Libc.PR_SET_TIMERSLACK, 1, 0, 0, 0); // per thread: call from the ticking thread
        _nextNs = Now() + _periodNs;
    }

    /// <summary>CLOCK_MONOTONIC in ns: the same clock as <see cref="Core.Clock.MonotonicNs"/>.</summary>
    public static long Now() => Core.Clock.MonotonicNs();

    /// <summary>Sleeps until the next deadline, or returns false at once when cancelled.</summary>
    /// <param name="deadlineNs">The deadline that was waited for (lateness = now - deadline).</param>
    public bool WaitNext(CancellationToken token, out long deadlineNs) => WaitNext(token, out deadlineNs, out _);

    /// <inheritdoc cref="WaitNext(CancellationToken, out long)"/>
    /// <param name="nowNs">CLOCK_MONOTONIC just after the wake-up: the clock read that the missed-deadline check takes,
    /// handed to the caller so that a 1 kHz tick reads the monotonic clock once, not twice.</param>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)] // into the tick loop
    public bool WaitNext(CancellationToken token, out long deadlineNs, out long nowNs)
    {
        deadlineNs = _nextNs;
        nowNs = 0;
        var req = new Libc.Timespec { Sec = _nextNs / 1_000_000_000, Nsec = _nextNs % 1_000_000_000 };
        int rc;
        do
        {
            if (token.IsCancellationRequested) return false;
            rc = Libc.clock_nanosleep(Libc.CLOCK_MONOTONIC, Libc.TIMER_ABSTIME, in req, IntPtr.Zero);
        } while (rc == Libc.EINTR);

        _nextNs += _periodNs;
        long now = nowNs = Now();
        if (now - _nextNs > _periodNs)
        {
            long skip = (now - _nextNs) / _periodNs;
            Missed += skip;
            _nextNs += skip * _periodNs;
        }
        return !token.IsCancellationRequested;
    }
}
