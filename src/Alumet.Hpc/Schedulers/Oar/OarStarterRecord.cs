namespace Alumet.Hpc.Schedulers.Oar;

/// <summary>
/// Which OAR mechanism started a job's sampler on this node: <c>&lt;state_dir&gt;/oar-starters/&lt;jobid&gt;</c> holds
/// "resource-manager" or "prologue". The resource manager's init runs on every node before oarexec runs the
/// prologue on the first one, so a prologue that finds a record does nothing, and each mechanism stops only
/// what it started (the resource manager's clean stops unconditionally: it is the last call before the kill -9).
/// Lives in state_dir, never /tmp (OAR purges the job user's /tmp files; these are root's, but the rule is kept).
/// </summary>
public static class OarStarterRecord
{
    public const string ResourceManager = "resource-manager";
    public const string Prologue = "prologue";

    /// <summary>In state_dir: the records' directory.</summary>
    public const string DirectoryName = "oar-starters";

    public static string PathFor(string stateDir, string jobId) => Path.Combine(stateDir, DirectoryName, jobId);

    /// <summary>The recorded starter, or null when none (or unreadable).</summary>
    public static string? Read(string stateDir, string jobId)
    {
        try
        {
            string s = File.ReadAllText(PathFor(stateDir, jobId)).Trim();
            return s is ResourceManager or Prologue ? s : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Records the starter; false when it cannot be written (the caller still starts the sampler).</summary>
    public static bool Write(string stateDir, string jobId, string starter)
    {
        try
        {
            string path = PathFor(stateDir, jobId);
            // It names every OAR job running on the node: root's only, as <state_dir>/oar. It used to be made with the
            // umask's mode (0755) in a state_dir others may traverse, so any user listed the node's OAR jobs.
            HookHost.RootsOnly(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, starter + "\n");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    public static void Delete(string stateDir, string jobId)
    {
        try { File.Delete(PathFor(stateDir, jobId)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }
}
