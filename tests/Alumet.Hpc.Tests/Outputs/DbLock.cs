using System.Diagnostics;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>Another process (the sqlite3 CLI, as a reader or a backup would) holding the database's exclusive lock until disposed.</summary>
internal sealed class DbLock : IDisposable
{
    private readonly Process _p;

    public static bool Available => File.Exists("/usr/bin/sqlite3");

    public DbLock(string path)
    {
        _p = Process.Start(new ProcessStartInfo("/usr/bin/sqlite3", [path]) { RedirectStandardInput = true, RedirectStandardOutput = true })!;
        _p.StandardInput.WriteLine("BEGIN EXCLUSIVE; SELECT 'locked';");
        _p.StandardInput.Flush();
        if (_p.StandardOutput.ReadLine() != "locked") throw new InvalidOperationException("sqlite3 did not take the lock");
    }

    public void Dispose()
    {
        if (_p.HasExited) return;
        _p.StandardInput.WriteLine("COMMIT;");
        _p.StandardInput.WriteLine(".quit");
        _p.StandardInput.Close();
        _p.WaitForExit(5000);
        _p.Dispose();
    }
}
