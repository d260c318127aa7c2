using System.Text;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Report;

/// <summary>
/// Where a listing of a SQLite database is written while its statement runs: a statement being stepped holds a shared
/// lock that keeps every writer out (rollback journal, <see cref="Outputs.Accounting.SqliteBackend"/>), so a report whose
/// stdout or stderr is a pipe nobody reads held root's hooks off the database for as long as its caller liked. The output
/// goes to an unlinked temporary file of the caller's (0600, created exclusively: never through a planted link), and is
/// copied to the real streams once the database is closed. Memory stays constant (README "alumet-report"). A write to it
/// that fails (no room left there) is <see cref="Failed"/>: the report's one-sentence error.
/// </summary>
internal sealed class ReportSpill : IDisposable
{
    private readonly FileStream _out, _err;
    public TextWriter Out { get; }
    public TextWriter Err { get; }

    private ReportSpill(FileStream o, FileStream e)
    {
        (_out, _err) = (o, e);
        Out = new StreamWriter(o, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
        Err = new StreamWriter(e, new UTF8Encoding(false), 4096, leaveOpen: true);
    }

    /// <summary>Where the spill goes when the temporary directory cannot take it.</summary>
    private const string Fallback = "/tmp";

    /// <summary>
    /// A spill in the temporary directory ($TMPDIR, else /tmp), or in /tmp when that one cannot take a file (not a
    /// directory, not writable, gone): the listing is never run unprotected. Its files are created exclusively under a
    /// random name, 0600, and unlinked at once, so nothing planted in a shared directory is ever followed or read.
    /// </summary>
    /// <exception cref="Failed">Neither directory can take it: one sentence naming both and the fix.</exception>
    public static ReportSpill Create()
    {
        string dir = Path.TrimEndingDirectorySeparator(Path.GetTempPath());
        try { return In(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            string first = $"cannot keep the listing in the temporary directory {dir} ({Why(dir, e)})";
            if (dir == Fallback) throw new Failed($"{first}, where it is kept while the database is read; set TMPDIR to a directory you can write");
            try { return In(Fallback); }
            catch (Exception f) when (f is IOException or UnauthorizedAccessException)
            {
                throw new Failed($"{first} nor in {Fallback} ({Why(Fallback, f)}), where it is kept while the database is read; set TMPDIR to a directory you can write");
            }
        }
    }

    private static ReportSpill In(string dir)
    {
        FileStream? o = null;
        try
        {
            o = Unlinked(dir);
            return new ReportSpill(o, Unlinked(dir));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            o?.Dispose();
            throw;
        }
    }

    /// <summary>Why a file could not be made in <paramref name="dir"/>, without the file's random name.</summary>
    private static string Why(string dir, Exception e) =>
        !Directory.Exists(dir) ? (Path.Exists(dir) ? "not a directory" : "no such directory")
        : e is UnauthorizedAccessException ? "permission denied"
        : Strerror(e) ?? ErrorText.Describe(e);

    /// <summary>The system's text for an I/O error, whose HResult on Unix is its errno; null when it is none.</summary>
    private static string? Strerror(Exception e) =>
        e.HResult is > 0 and < 4096 ? new System.ComponentModel.Win32Exception(e.HResult).Message : null;

    private static FileStream Unlinked(string dir)
    {
        string path = Path.Combine(dir, $"alumet-report.{Guid.NewGuid():N}");
        var fs = new SpillFile(dir, path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.None,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            BufferSize = 0, // the writers buffer: every write of theirs reaches Write below
        });
        File.Delete(path);
        return fs;
    }

    /// <summary>A write to the spill that failed, as the report says it: the directory, why, and the fix.</summary>
    public sealed class Failed(string message) : IOException(message);

    /// <summary>The spill's file: a failed write is <see cref="Failed"/>, never taken for the database's failure.</summary>
    private sealed class SpillFile(string dir, string path, FileStreamOptions options) : FileStream(path, options)
    {
        public override void Write(byte[] buffer, int offset, int count)
        {
            try { base.Write(buffer, offset, count); }
            catch (IOException e) when (e is not Failed) { throw Failure(e); }
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            try { base.Write(buffer); }
            catch (IOException e) when (e is not Failed) { throw Failure(e); }
        }

        private Failed Failure(IOException e)
        {
            // On Unix an I/O error's HResult is its errno (EFBIG 27, ENOSPC 28, EDQUOT 122: no room).
            string why = Strerror(e) ?? e.Message;
            return new Failed(e.HResult is 27 or 28 or 122
                ? $"no room for the listing in the temporary directory {dir} ({why}), where it is kept while the database is read; "
                  + "free space there, or set TMPDIR to a directory with room (through alumet-report-gate it is always /tmp)"
                : $"cannot write the listing to the temporary directory {dir} ({why}), where it is kept while the database is read; "
                  + "set TMPDIR to another directory (through alumet-report-gate it is always /tmp)");
        }
    }

    /// <summary>Writes what the writers hold to the spill (called while the database is open: a <see cref="Failed"/> is the listing's error).</summary>
    public void Flush()
    {
        Out.Flush();
        Err.Flush();
    }

    /// <summary>Copies what was written to <paramref name="output"/> and <paramref name="error"/>.</summary>
    public void CopyTo(TextWriter output, TextWriter error)
    {
        Copy(Out, _out, output);
        Copy(Err, _err, error);
    }

    private static void Copy(TextWriter spilled, FileStream file, TextWriter to)
    {
        spilled.Flush();
        file.Position = 0;
        using var r = new StreamReader(file, new UTF8Encoding(false), false, 1 << 16, leaveOpen: true);
        var buffer = new char[1 << 16];
        for (int n; (n = r.Read(buffer, 0, buffer.Length)) > 0;) to.Write(buffer, 0, n);
        to.Flush();
    }

    public void Dispose()
    {
        // A listing that failed leaves text in the writers: it is dropped, not written again (the error is said once).
        try { Out.Dispose(); } catch (Failed) { }
        try { Err.Dispose(); } catch (Failed) { }
        _out.Dispose();
        _err.Dispose();
    }
}
