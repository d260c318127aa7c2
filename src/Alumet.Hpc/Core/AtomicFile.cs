namespace Alumet.Hpc.Core;

/// <summary>
/// Files replaced whole: written under a temporary name unique to this writer (pid + random), then renamed over
/// the target. Two processes replacing the same file (two finalizers of one job, a sampler and an epilog) never
/// write into each other's temporary file, and a reader sees the old file or the new one, never a mix.
/// </summary>
public static class AtomicFile
{
    private const string TempSuffix = ".tmp";

    /// <summary>A temporary name beside <paramref name="path"/>, unique to this writer: <c>path.&lt;pid&gt;.&lt;random&gt;.tmp</c>.</summary>
    public static string TempPath(string path) =>
        $"{path}.{Environment.ProcessId}.{Random.Shared.NextInt64():x16}{TempSuffix}";

    /// <summary>Whether <paramref name="name"/> is a temporary name <see cref="TempPath"/> gave for <paramref name="target"/>.</summary>
    public static bool IsTempOf(string name, string target) =>
        name.StartsWith(target + ".", StringComparison.Ordinal) && name.EndsWith(TempSuffix, StringComparison.Ordinal);

    /// <summary>The pattern (Directory.GetFiles) of the temporary names of the targets <paramref name="targetPattern"/> matches.</summary>
    public static string TempPattern(string targetPattern) => targetPattern + ".*" + TempSuffix;

    /// <summary>
    /// Reads back a name <see cref="TempPath"/> wrote: its target and its writer's pid (a positive decimal, then a
    /// non-empty hexadecimal random). False for any other name, with <paramref name="target"/> empty and <paramref name="pid"/> 0.
    /// </summary>
    public static bool TryParseTemp(string name, out string target, out int pid)
    {
        target = "";
        pid = 0;
        if (!name.EndsWith(TempSuffix, StringComparison.Ordinal)) return false;
        var stem = name.AsSpan(0, name.Length - TempSuffix.Length);
        int r = stem.LastIndexOf('.');
        if (r < 0) return false;
        var random = stem[(r + 1)..];
        int p = stem[..r].LastIndexOf('.');
        if (p < 0 || random.Length == 0 || random.ContainsAnyExcept(HexDigits)) return false;
        if (!int.TryParse(stem[(p + 1)..r], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int writer) || writer <= 0)
            return false;
        target = stem[..p].ToString();
        pid = writer;
        return true;
    }

    private static readonly System.Buffers.SearchValues<char> HexDigits = System.Buffers.SearchValues.Create("0123456789abcdefABCDEF");

    /// <summary>
    /// Like <see cref="WriteAllText"/>, and durable when it returns: the file is fsync'd before the rename and the
    /// directory after it, so the new file survives a power loss or a kernel crash, not only a process crash.
    /// </summary>
    public static void WriteDurably(string path, ReadOnlySpan<byte> contents, UnixFileMode mode)
    {
        string tmp = TempPath(path);
        try
        {
            using (var fs = new FileStream(tmp, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode }))
            {
                fs.Write(contents);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            Discard(tmp);
            throw;
        }
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>
    /// Replaces <paramref name="path"/> with a copy of <paramref name="source"/> (the same path is allowed: the file then
    /// gets a new inode, and a writer holding the old one open writes into the unlinked old file), durable as
    /// <see cref="WriteDurably"/>: the copy fsync'd before the rename, the directory after it.
    /// </summary>
    public static void ReplaceWithCopy(string source, string path)
    {
        string tmp = TempPath(path);
        try
        {
            File.Copy(source, tmp);
            using (var copy = new FileStream(tmp, FileMode.Open, FileAccess.Write)) copy.Flush(flushToDisk: true);
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            Discard(tmp);
            throw;
        }
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Removes a temporary file whose replace failed (best effort: the failure being reported is the caller's).</summary>
    private static void Discard(string tmp)
    {
        try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>fsync of a directory: makes the creations, renames and deletions in it durable.</summary>
    public static void SyncDirectory(string dir)
    {
        int fd = Native.Libc.open(dir, Native.Libc.O_RDONLY | Native.Libc.O_DIRECTORY);
        if (fd < 0) return;
        Native.Libc.fsync(fd);
        Native.Libc.close(fd);
    }

    /// <summary>Like <see cref="WriteAllText"/>, from bytes the caller already holds (no string, no encoding copy).</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> contents)
    {
        string tmp = TempPath(path);
        try
        {
            using (var h = File.OpenHandle(tmp, FileMode.CreateNew, FileAccess.Write))
                RandomAccess.Write(h, contents, 0);
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            Discard(tmp);
            throw;
        }
    }

    /// <summary>Replaces <paramref name="path"/> whole with <paramref name="contents"/> in UTF-8 (no byte order mark).</summary>
    public static void WriteAllText(string path, string contents) => WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(contents));
}
