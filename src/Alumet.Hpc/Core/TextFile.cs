namespace Alumet.Hpc.Core;

/// <summary>Small text files read whole (sysfs attributes, a state dir's one-line files): never the hot path.</summary>
public static class TextFile
{
    /// <summary>The file's text, trimmed; null when it cannot be read (absent, a directory, permission denied, an I/O error).</summary>
    public static string? ReadTrimmed(string path)
    {
        try { return File.ReadAllText(path).Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }
}
