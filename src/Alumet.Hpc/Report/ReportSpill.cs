using System.Text;

namespace Alumet.Hpc.Report;

/// <summary>
/// Where a listing of a SQLite database is written while its statement runs: a statement being stepped holds a shared
/// lock that keeps every writer out (rollback journal, <see cref="Outputs.Accounting.SqliteBackend"/>), so a report whose
/// stdout or stderr is a pipe nobody reads held root's hooks off the database for as long as its caller liked. The output
/// goes to an unlinked temporary file of the caller's (0600, created exclusively: never through a planted link), and is
/// copied to the real streams once the database is closed. Memory stays constant (README "alumet-report").
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

    /// <summary>A spill in the temporary directory, or null when none can be made there (the report then writes directly).</summary>
    public static ReportSpill? TryCreate()
    {
        FileStream? o = null;
        try
        {
            o = Unlinked();
            return new ReportSpill(o, Unlinked());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            o?.Dispose();
            return null;
        }
    }

    private static FileStream Unlinked()
    {
        string path = Path.Combine(Path.GetTempPath(), $"alumet-report.{Guid.NewGuid():N}");
        var fs = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.None,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        File.Delete(path);
        return fs;
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
        Out.Dispose();
        Err.Dispose();
        _out.Dispose();
        _err.Dispose();
    }
}
