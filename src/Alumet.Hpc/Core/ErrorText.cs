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
            Win32Exception w => usable ? msg : $"cannot start the program: {new Win32Exception(w.NativeErrorCode).Message}",
            FormatException => usable ? msg : "a value has the wrong format",
            OutOfMemoryException => "out of memory",
            DllNotFoundException => (QuotedName().Match(msg) is { Success: true } m ? $"native library {m.Value} not found" : "a native library is missing")
                + " (install the libraries of out/bin beside alumet-hpc: README \"Install\")",
            IOException => usable ? msg : $"input/output error (code {e.HResult & 0xFFFF})",
            _ => usable ? msg : e.GetType().Name.Replace("Exception", "") + " error",
        };
    }

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
