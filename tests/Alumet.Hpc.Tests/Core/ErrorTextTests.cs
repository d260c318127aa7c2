using Alumet.Hpc.Core;

namespace Alumet.Hpc.Tests.Core;

public class ErrorTextTests
{
    [Fact]
    public void AMissingNativeLibraryBehindATypeInitializerIsNamedWithTheFix()
    {
        // What the native binary throws when libe_sqlite3.so is not beside it: the wrapper's message names no cause.
        var e = new TypeInitializationException("Microsoft.Data.Sqlite.SqliteConnection", new DllNotFoundException(
            "Unable to load shared library 'e_sqlite3' or one of its dependencies. In order to help diagnose loading problems, consider using a tool like strace. If you're using glibc, consider setting the LD_DEBUG environment variable: \n/usr/local/bin/libe_sqlite3.so: cannot open shared object file"));
        Assert.Equal("native library 'e_sqlite3' not found (install the libraries of out/bin beside alumet-hpc: README \"Install\")", ErrorText.Describe(e));
    }

    [Fact]
    public void AnyWrappedCauseIsTheInnerOnesSentence() =>
        Assert.Equal("/x/y: no such file", ErrorText.Describe(new TypeInitializationException("T", new FileNotFoundException("gone", "/x/y"))));

    /// <summary>Process.Start's failure (a prolog starting the node sampler, a sampler its finalize-job child): the program,
    /// why, and the fix. On dd629f5 the runtime's "An error occurred trying to start process '…' with working directory '…'.
    /// No such file or directory".</summary>
    [Fact]
    public void AProgramThatCannotStartIsOneSentenceOfOurs()
    {
        var e = Assert.Throws<System.ComponentModel.Win32Exception>(() =>
            System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/nonexistent/alumet-hpc-sampler") { UseShellExecute = false, WorkingDirectory = "/" }));
        Assert.Equal("cannot start /nonexistent/alumet-hpc-sampler: no such file; install the programs of out/bin together (README \"Install\")", ErrorText.Describe(e));
    }
}
