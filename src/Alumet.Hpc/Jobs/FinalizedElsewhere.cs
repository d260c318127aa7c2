using Microsoft.Win32.SafeHandles;

namespace Alumet.Hpc.Jobs;

/// <summary>
/// How the node sampler learns that a job it samples was finalized by another process (its epilog gave up waiting for
/// a hung sampler and finalized from the spool), without opening every job's marker on every wake: that process appends
/// the job's key to <c>&lt;state_dir&gt;/node/finalized-elsewhere</c> after writing the marker, and the sampler, once per
/// housekeeping wake, compares the file's size (one fstat on a kept-open handle, whatever the number of jobs) and reads
/// the markers only when it grew. Opening every job's two markers 10 times a second was most of the node sampler's CPU at
/// the defaults (bench/README.md, node sampler). The directory is root-only (written by root hooks and the sampler).
/// </summary>
public sealed class FinalizedElsewhere : IDisposable
{
    public const string File = "finalized-elsewhere";

    private readonly SafeFileHandle? _handle;
    private long _seen;

    /// <param name="nodeRoot">The sampler's root-only directory (<see cref="Spool.NodeSpool.Root"/>), created when missing.</param>
    public FinalizedElsewhere(string nodeRoot)
    {
        try
        {
            Spool.NodeSpool.RootOnlyDirectory(nodeRoot);
            _handle = System.IO.File.OpenHandle(Path.Combine(nodeRoot, File), FileMode.OpenOrCreate, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            _seen = RandomAccess.GetLength(_handle);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Without it every wake reads the markers, as before: slower, never wrong.
            Core.Log.Warn($"node sampler: {e.Message}: every job's finalized marker is read at each housekeeping wake instead");
        }
    }

    /// <summary>Whether a finalization by another process was signalled since the last call (true when the signal file is unusable).</summary>
    public bool Changed()
    {
        if (_handle is null) return true;
        long size;
        try { size = RandomAccess.GetLength(_handle); }
        catch (IOException) { return true; }
        if (size == _seen) return false;
        _seen = size;
        return true;
    }

    /// <summary>
    /// Called by a process other than the node sampler after it finalized a job (its marker written): the sampler, if one
    /// runs, drops the job at its next wake. Nothing when no sampler ever ran here (no directory).
    /// </summary>
    public static void Raise(string nodeRoot, string jobKey)
    {
        if (!Directory.Exists(nodeRoot)) return;
        try
        {
            using var h = System.IO.File.OpenHandle(Path.Combine(nodeRoot, File), FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            RandomAccess.Write(h, System.Text.Encoding.UTF8.GetBytes(jobKey + "\n"), RandomAccess.GetLength(h));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The sampler's liveness rules still end the job (its cgroup gone, or its lifetime): later, not twice.
            Core.Log.Warn($"could not tell the node sampler that job {jobKey} was finalized: {e.Message}");
        }
    }

    /// <summary>Empties the signal file: a starting daemon, under the node lock, before it recovers the jobs (bounded size).</summary>
    public static void Reset(string nodeRoot)
    {
        try { System.IO.File.WriteAllBytes(Path.Combine(nodeRoot, File), []); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    public void Dispose() => _handle?.Dispose();
}
