namespace Alumet.Hpc.Commands;

/// <summary>
/// Finds the program <c>exec</c> runs the way a shell does (POSIX <c>execvp</c>): a name with a '/' is a path,
/// any other name is the first executable regular file found in <c>PATH</c> (an empty entry is the current
/// directory). Process.Start's own search also looks in our binary's directory and the current directory first,
/// which would run a planted <c>./ls</c> instead of <c>/bin/ls</c>; resolving here also lets <c>exec</c> refuse a
/// missing command before anything is measured. Exit codes as in a shell: 127 not found, 126 not executable.
/// </summary>
public static class CommandPath
{
    /// <param name="Path">The file to run, or null when <paramref name="Problem"/> says why not.</param>
    public readonly record struct Resolution(string? Path, int ExitCode, string Problem);

    public static Resolution Resolve(string name, string? pathVariable)
    {
        if (name.Length == 0) return new(null, 127, "the command name is empty");
        if (name.Contains('/')) return Check(name, name);

        foreach (string dir in (pathVariable ?? "/usr/local/bin:/usr/bin:/bin").Split(':'))
        {
            string candidate = System.IO.Path.Combine(dir.Length == 0 ? "." : dir, name);
            if (File.Exists(candidate) && Native.Libc.access(candidate, Native.Libc.X_OK) == 0)
                return new(candidate, 0, "");
        }
        return new(null, 127, $"'{name}': command not found in PATH; check the name, or give the program's path");
    }

    private static Resolution Check(string path, string name)
    {
        if (Directory.Exists(path)) return new(null, 126, $"'{name}' is a directory, not a program");
        if (!File.Exists(path)) return new(null, 127, $"'{name}': no such file; check the path");
        if (Native.Libc.access(path, Native.Libc.X_OK) != 0)
            return new(null, 126, $"'{name}' is not executable (permission denied); chmod +x it or run it through its interpreter");
        return new(path, 0, "");
    }
}
