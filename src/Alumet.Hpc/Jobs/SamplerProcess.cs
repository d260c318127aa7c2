namespace Alumet.Hpc.Jobs;

/// <summary>Files in a job's state directory that the launcher and the sampler use to talk.</summary>
public static class SamplerFiles
{
    /// <summary>Written by the sampler once detached: "pid starttime". The launcher waits for it.</summary>
    public const string Pid = "sampler.pid";
    /// <summary>Written last, after the DB row, when the state dir is kept: "complete" or "partial: reason" (else <see cref="JobFinalizer.MarkerPath"/>).</summary>
    public const string Finalized = "finalized";
    /// <summary>Why the last finalization attempt failed (state kept); the next attempt puts it in the row's reason.</summary>
    public const string FinalizeError = "finalize-error";
    /// <summary>Why the sampler ended the run without its finalization (a later run of its job id registered first:
    /// NodeSampler.EndForLaterRun), for its row: the spool is kept and finalized as one whose finalization failed.</summary>
    public const string EndReason = "end-reason";
    /// <summary>Its Parquet export failed (the row says so, the spool is kept): what that finalization was asked, for the
    /// retry at a later job's end (<see cref="JobFinalizer.RetryExports"/>).</summary>
    public const string ExportPending = "export-pending";
}

/// <summary>A sampler process as recorded in its pid file: pid plus kernel start time, so a reused pid is never mistaken for it.</summary>
public readonly record struct SamplerPid(int Pid, ulong StartTime)
{
    public override string ToString() => $"{Pid} {StartTime}";

    public static SamplerPid? Self(string procfsRoot = "/proc") =>
        ProcessState.StartTime(Environment.ProcessId, procfsRoot) is { } st ? new SamplerPid(Environment.ProcessId, st) : null;

    public static SamplerPid? Read(string stateDir)
    {
        try
        {
            var parts = File.ReadAllText(Path.Combine(stateDir, SamplerFiles.Pid)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return parts.Length == 2 && int.TryParse(parts[0], out int pid) && ulong.TryParse(parts[1], out ulong st)
                ? new SamplerPid(pid, st) : null;
        }
        catch (IOException) { return null; }
    }

    public void Write(string stateDir)
    {
        Core.AtomicFile.WriteAllText(Path.Combine(stateDir, SamplerFiles.Pid), ToString());
    }

    /// <summary>Running, not a zombie (in containers kill -0 succeeds on zombies), and the same process.</summary>
    public bool IsAlive(string procfsRoot = "/proc") =>
        ProcessState.Read(Pid, procfsRoot) is { } s && s.State is not ('Z' or 'X') && s.StartTime == StartTime;
}

public static class ProcessState
{
    public readonly record struct Stat(char State, ulong StartTime);

    /// <summary>Parses /proc/PID/stat: state (field 3) and starttime (field 22), after the parenthesised comm.</summary>
    public static Stat? Read(int pid, string procfsRoot = "/proc")
    {
        try
        {
            string stat = File.ReadAllText(Path.Combine(procfsRoot, pid.ToString(), "stat"));
            int close = stat.LastIndexOf(')');
            if (close < 0) return null;
            var fields = stat[(close + 2)..].Split(' ');
            // fields[0] is field 3 (state); starttime is field 22 → index 19.
            return fields.Length > 19 && ulong.TryParse(fields[19], out ulong st) ? new Stat(fields[0][0], st) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    public static ulong? StartTime(int pid, string procfsRoot = "/proc") => Read(pid, procfsRoot)?.StartTime;
}
