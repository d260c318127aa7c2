namespace Alumet.Hpc.Config;

/// <summary>
/// A configuration problem, reported as ONE line an admin can act on:
/// <c>&lt;file&gt;:&lt;line&gt;: &lt;section.key&gt;: &lt;what is wrong&gt;; &lt;how to fix&gt;</c>.
/// The line is left out when unknown (e.g. a file that cannot be read), the key when none applies (syntax errors).
/// </summary>
public sealed class ConfigException : Exception
{
    public ConfigException(string file, int line, string? key, string problem, string fix)
        : base(Format(file, line, key, problem, fix))
    {
        File = file;
        Line = line;
        Key = key;
        Problem = problem;
        Fix = fix;
    }

    /// <summary>The config file (or "defaults" / another source name).</summary>
    public string File { get; }
    /// <summary>1-based line in <see cref="File"/>, 0 when unknown.</summary>
    public int Line { get; }
    /// <summary>"section.key" (or "section" alone), null for syntax and file errors.</summary>
    public string? Key { get; }
    public string Problem { get; }
    public string Fix { get; }

    private static string Format(string file, int line, string? key, string problem, string fix)
    {
        var s = line > 0 ? $"{file}:{line}: " : $"{file}: ";
        if (key is not null) s += key + ": ";
        s += problem + "; " + fix;
        // One line, always: a value or a parser message may carry a newline.
        return s.Replace("\r", "\\r").Replace("\n", "\\n");
    }
}
