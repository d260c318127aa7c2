namespace Alumet.Hpc.Core;

/// <summary>
/// Files replaced whole: written under a temporary name unique to this writer (pid + random), then renamed over
/// the target. Two processes replacing the same file (two finalizers of one job, a sampler and an epilog) never
/// write into each other's temporary file, and a reader sees the old file or the new one, never a mix.
/// </summary>
public static class AtomicFile
{
    /// <summary>A temporary name beside <paramref name="path"/>, unique to this writer: <c>path.&lt;pid&gt;.&lt;random&gt;.tmp</c>.</summary>
    public static string TempPath(string path) =>
        $"{path}.{Environment.ProcessId}.{Random.Shared.NextInt64():x16}.tmp";

    /// <summary>Whether <paramref name="name"/> is a temporary name <see cref="TempPath"/> gave for <paramref name="target"/>.</summary>
    public static bool IsTempOf(string name, string target) =>
        name.StartsWith(target + ".", StringComparison.Ordinal) && name.EndsWith(".tmp", StringComparison.Ordinal);

    public static void WriteAllText(string path, string contents)
    {
        string tmp = TempPath(path);
        try
        {
            File.WriteAllText(tmp, contents);
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }
}
