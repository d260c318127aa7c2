using System.ComponentModel;
using System.Text.RegularExpressions;

namespace Alumet.Hpc.Core;

/// <summary>
/// One line a user understands for an exception that reached a command's top level: what went wrong, and how to fix it
/// where the fix is known. The native binary keeps the runtime's own messages (UseSystemResourceKeys off in the Cli
/// project); the mapping below adds the fix, and stands in if a message is ever a bare resource key.
/// </summary>
public static partial class ErrorText
{
    [GeneratedRegex(@"^[A-Za-z0-9]+(_[A-Za-z0-9]+)+$")]
    private static partial Regex ResourceKey();

    [GeneratedRegex(@"'[^']+'")]
    private static partial Regex QuotedName();

    /// <summary>Process.Start's failure (the runtime's SR.ErrorStartingProcess): the program is the first quoted name.</summary>
    [GeneratedRegex(@"^An error occurred trying to start process '(?<program>[^']*)'")]
    private static partial Regex StartingProcess();

    public static string Describe(Exception e)
    {
        // "A type initializer threw an exception" names no cause: the inner exception is the reason (e.g. a missing library).
        while (e is TypeInitializationException or System.Reflection.TargetInvocationException && e.InnerException is { } inner) e = inner;
        string msg = FirstLine(e.Message);
        bool usable = msg.Length > 0 && !ResourceKey().IsMatch(msg);
        return e switch
        {
            UnauthorizedAccessException => (usable ? msg : "Access denied") + " (permission denied: ask an administrator, or run as a user who may read it)",
            FileNotFoundException f => f.FileName is { Length: > 0 } n ? $"{n}: no such file" : usable ? msg : "a file does not exist",
            DirectoryNotFoundException => (usable ? msg : "a directory does not exist") + " (check the path; a directory on it does not exist)",
            PathTooLongException => usable ? msg : "a path is too long",
            Win32Exception w when StartingProcess().Match(msg) is { Success: true } m => CannotStart(m.Groups["program"].Value, w.NativeErrorCode),
            Win32Exception w => usable ? msg : $"cannot start the program: {new Win32Exception(w.NativeErrorCode).Message}",
            FormatException => usable ? msg : "a value has the wrong format",
            OutOfMemoryException => "out of memory",
            DllNotFoundException => (QuotedName().Match(msg) is { Success: true } m ? $"native library {m.Value} not found" : "a native library is missing")
                + " (install the libraries of out/bin beside alumet-hpc: README \"Install\")",
            IOException => usable ? msg : $"input/output error (code {e.HResult & 0xFFFF})",
            _ => usable ? msg : $"an unexpected error with no description (code 0x{e.HResult:X8}): report it with this line",
        };
    }

    /// <summary>
    /// A program that could not be started (Process.Start: the node sampler from a prolog, a finalize-job child): what,
    /// why, and the fix, instead of the runtime's "An error occurred trying to start process '…' with working directory
    /// '/'. Too many open files".
    /// </summary>
    private static string CannotStart(string program, int errno) => $"cannot start {program}: " + errno switch
    {
        24 => "too many open files" + (Jobs.DescriptorLimit.Current() is { } limit
            ? $" (RLIMIT_NOFILE is {Jobs.DescriptorLimit.Show(limit.Soft)}, hard limit {Jobs.DescriptorLimit.Show(limit.Hard)})" : "")
            + "; raise the hard limit where this runs (LimitNOFILE= in the service that starts it, e.g. slurmd's, or ulimit -Hn 1024)",
        23 => "the system's open-file table is full; raise fs.file-max (sysctl) or find what holds the files",
        2 => "no such file; install the programs of out/bin together (README \"Install\")",
        13 => "permission denied; it must be executable by this user (root for the hooks)",
        8 => "not a program for this machine (exec format error); reinstall out/bin (README \"Install\")",
        11 or 12 => $"{new Win32Exception(errno).Message}; raise the memory or process limits (RLIMIT_NPROC) where this runs",
        _ => new Win32Exception(errno).Message,
    };

    /// <summary>The last non-empty line of what a child process wrote on stderr: its own one-line reason ("" if none).</summary>
    public static string LastLine(string stderr) =>
        stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";

    private static string FirstLine(string? s)
    {
        if (string.IsNullOrEmpty(s)) return "";
        int nl = s.IndexOfAny(['\r', '\n']);
        return (nl < 0 ? s : s[..nl]).Trim();
    }
}
