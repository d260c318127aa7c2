using System.Globalization;
using Tomlyn;
using Tomlyn.Parsing;
using Tomlyn.Syntax;

namespace Alumet.Hpc.Config;

/// <summary>How the four writable default paths are chosen for a non-root caller.</summary>
public enum DefaultPathPolicy
{
    /// <summary>
    /// Non-root: state_dir, data_dir, database and log_file that still hold their built-in /var defaults
    /// move under $XDG_DATA_HOME/alumet-hpc (or ~/.local/share/alumet-hpc), so `alumet-hpc exec` works
    /// for an unprivileged user. Root keeps the /var defaults.
    /// </summary>
    PerUserWhenUnprivileged,
    /// <summary>Never move paths: for readers of the shared system files (alumet-report, hooks).</summary>
    System,
}

/// <summary>A loaded, validated configuration and where it came from.</summary>
/// <param name="Source">Absolute path of the file read, or "defaults" when no file was used.</param>
/// <param name="PerUserPaths">True when default paths were moved under the user's XDG data directory.</param>
public sealed record LoadedConfig(AlumetConfig Config, string Source, bool PerUserPaths);

/// <summary>
/// Finds, reads and checks the one TOML config file.
/// Precedence: --config FILE &gt; $ALUMET_HPC_CONFIG &gt; /etc/alumet-hpc/alumet.toml (if present) &gt; embedded defaults.
/// A file named by --config or the env var must exist; the /etc file is optional.
/// Every problem is a <see cref="ConfigException"/> with a one-line "file:line: key: what; fix" message.
/// </summary>
public static class ConfigLoader
{
    public const string EnvVar = "ALUMET_HPC_CONFIG";
    public const string SystemPath = "/etc/alumet-hpc/alumet.toml";
    public const string DefaultsSource = "defaults";
    private const string SyntaxFix = "fix the TOML syntax (examples/alumet.toml shows every key)";

    /// <summary>
    /// Resolves the config path, loads and validates it.
    /// <paramref name="env"/> = null reads the process environment (tests pass a dictionary).
    /// </summary>
    public static LoadedConfig Load(
        string? cliPath,
        IReadOnlyDictionary<string, string>? env = null,
        DefaultPathPolicy policy = DefaultPathPolicy.PerUserWhenUnprivileged) =>
        Load(cliPath, env, policy, SystemPath, Environment.IsPrivilegedProcess);

    internal static LoadedConfig Load(
        string? cliPath, IReadOnlyDictionary<string, string>? env, DefaultPathPolicy policy,
        string systemPath, bool isRoot)
    {
        Func<string, string?> getEnv = env is null
            ? Environment.GetEnvironmentVariable
            : name => env.TryGetValue(name, out var v) ? v : null;

        AlumetConfig config;
        string source;
        if (!string.IsNullOrEmpty(cliPath))
        {
            source = Path.GetFullPath(cliPath);
            config = LoadFile(source, "check the --config path");
        }
        else if (getEnv(EnvVar) is { Length: > 0 } envPath)
        {
            source = Path.GetFullPath(envPath);
            config = LoadFile(source, $"check {EnvVar} (or unset it to use {systemPath})");
        }
        else if (File.Exists(systemPath))
        {
            source = systemPath;
            config = LoadFile(source, $"make {systemPath} readable or remove it to use the defaults");
        }
        else
        {
            source = DefaultsSource;
            config = new AlumetConfig();
        }

        var perUser = policy == DefaultPathPolicy.PerUserWhenUnprivileged && !isRoot
                      && ApplyPerUserPaths(config.Paths, getEnv);
        return new LoadedConfig(config, source, perUser);
    }

    /// <summary>Reads and validates one file. A missing or unreadable file is a ConfigException.</summary>
    public static AlumetConfig LoadFile(string path) => LoadFile(path, "check the path");

    private static AlumetConfig LoadFile(string path, string readFix)
    {
        if (Directory.Exists(path))
            throw new ConfigException(path, 0, null, "is a directory, not a config file", readFix);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var why = e switch
            {
                FileNotFoundException or DirectoryNotFoundException => "config file not found",
                UnauthorizedAccessException => "permission denied reading the config file",
                _ => "cannot read the config file: " + e.Message,
            };
            throw new ConfigException(path, 0, null, why, readFix);
        }
        return Parse(text, path);
    }

    /// <summary>
    /// The 1-based line of a syntax error at <paramref name="at"/>. An error found at the end of the text (an unfinished
    /// last line: "key =", "[paths") is the last written line's: the parser places it after the final newline, and a
    /// one-line file was reported at line 2.
    /// </summary>
    private static int ErrorLine(string toml, TextPosition at)
    {
        int end = toml.TrimEnd().Length;
        if (end == 0 || at.Offset < end) return at.Line + 1;
        return toml.AsSpan(0, end).Count('\n') + 1;
    }

    /// <summary>Parses and validates TOML text; <paramref name="sourceName"/> names it in error messages.</summary>
    public static AlumetConfig Parse(string toml, string sourceName)
    {
        var doc = SyntaxParser.Parse(toml, sourceName, true);
        if (doc.HasErrors)
        {
            foreach (var d in doc.Diagnostics)
            {
                if (d.Kind != DiagnosticMessageKind.Error) continue;
                throw new ConfigException(sourceName, ErrorLine(toml, d.Span.Start), null,
                    "invalid TOML: " + Shorten(d.Message), SyntaxFix);
            }
        }

        // Unknown keys and wrong types are found on the syntax tree: the source-generated
        // deserializer silently skips unknown keys, and its type errors name no key.
        var lines = new KeyLines();
        new SchemaWalker(sourceName, lines).Walk(doc);

        AlumetConfig config;
        try
        {
            config = TomlSerializer.Deserialize(toml, AlumetTomlContext.Default.AlumetConfig) ?? new AlumetConfig();
        }
        catch (TomlException e)
        {
            // Not expected after the walk; still a clear line rather than a stack trace.
            throw new ConfigException(sourceName, e.Line ?? 0, null, Shorten(e.Message), SyntaxFix);
        }

        Validate(config, sourceName, lines.LineOf);
        return config;
    }

    /// <summary>
    /// Checks every rule (ranges, allowed values, absolute paths...) on a config built in code or
    /// changed after loading. Throws the ConfigException of the first broken rule.
    /// </summary>
    public static void Validate(AlumetConfig config, string sourceName = DefaultsSource) =>
        Validate(config, sourceName, _ => 0);

    private static void Validate(AlumetConfig config, string sourceName, Func<string, int> lineOf)
    {
        ConfigException? first = null;
        foreach (var key in ConfigSchema.Keys)
        {
            if (key.Check(config) is not { } problem) continue;
            var line = lineOf(key.FullName);
            // Report the earliest line in the file, so fixing top-down converges.
            if (first is null || (line > 0 && (first.Line == 0 || line < first.Line)))
                first = new ConfigException(sourceName, line, key.FullName, problem, key.Fix);
        }
        if (first is not null) throw first;
    }

    /// <summary>The config as TOML (source-generated writer), e.g. for `alumet-hpc config show`.</summary>
    public static string Serialize(AlumetConfig config) =>
        TomlSerializer.Serialize(config, AlumetTomlContext.Default.AlumetConfig);

    /// <summary>
    /// Moves the writable paths that still hold their built-in defaults under
    /// $XDG_DATA_HOME/alumet-hpc (or $HOME/.local/share/alumet-hpc). Returns false, changing nothing,
    /// when neither variable gives an absolute directory.
    /// </summary>
    internal static bool ApplyPerUserPaths(PathsSection paths, Func<string, string?> getEnv)
    {
        var root = PerUserDataRoot(getEnv);
        if (root is null) return false;
        var defaults = new PathsSection();
        if (paths.StateDir == defaults.StateDir) paths.StateDir = Path.Combine(root, "state");
        if (paths.DataDir == defaults.DataDir) paths.DataDir = Path.Combine(root, "data");
        if (paths.Database == defaults.Database) paths.Database = Path.Combine(root, "accounting.db");
        if (paths.LogFile == defaults.LogFile) paths.LogFile = Path.Combine(root, "alumet-hpc.log");
        return true;
    }

    /// <summary>$XDG_DATA_HOME/alumet-hpc, else $HOME/.local/share/alumet-hpc (XDG: relative values are ignored).</summary>
    internal static string? PerUserDataRoot(Func<string, string?> getEnv)
    {
        if (getEnv("XDG_DATA_HOME") is { Length: > 0 } xdg && xdg[0] == '/')
            return Path.Combine(xdg, "alumet-hpc");
        if (getEnv("HOME") is { Length: > 0 } home && home[0] == '/')
            return Path.Combine(home, ".local", "share", "alumet-hpc");
        return null;
    }

    private static string Shorten(string message)
    {
        message = message.Replace('\r', ' ').Replace('\n', ' ');
        return message.Length <= 200 ? message : message[..200] + "...";
    }

    /// <summary>First line at which each "section.key" (and "section") is set.</summary>
    private sealed class KeyLines
    {
        private readonly Dictionary<string, int> _lines = new(StringComparer.Ordinal);
        public void Set(string key, int line) => _lines.TryAdd(key, line);
        public int LineOf(string key) => _lines.TryGetValue(key, out var l) ? l : 0;
    }

    /// <summary>
    /// Walks the syntax tree against <see cref="ConfigSchema"/>: every key must be known (top level,
    /// table headers, dotted keys, inline tables) and every value must have the expected TOML type.
    /// </summary>
    private sealed class SchemaWalker(string sourceName, KeyLines lines)
    {
        public void Walk(DocumentSyntax doc)
        {
            foreach (var kv in doc.KeyValues)
                WalkKeyValue([], kv);
            foreach (var table in doc.Tables)
            {
                var path = KeyPath(table.Name);
                var line = Line(table);
                if (table is TableArraySyntax)
                {
                    CheckPath(path, line, header: true);
                    throw Error(line, string.Join('.', path), "is an array of tables ([[...]])",
                        $"write it as a single table [{path[0]}]");
                }
                CheckTablePath(path, line);
                foreach (var kv in table.Items)
                    WalkKeyValue(path, kv);
            }
        }

        private void WalkKeyValue(List<string> prefix, KeyValueSyntax kv)
        {
            var path = new List<string>(prefix);
            path.AddRange(KeyPath(kv.Key));
            var line = kv.Key is null ? 0 : Line(kv.Key);
            if (path.Count == 1)
            {
                CheckPath(path, line);
                if (kv.Value is not InlineTableSyntax inline)
                    throw Error(line, path[0], $"expected a table [{path[0]}], got {Describe(kv.Value)}",
                        $"put its keys under a [{path[0]}] header");
                lines.Set(path[0], line);
                foreach (var item in inline.Items)
                    if (item.KeyValue is { } inner) WalkKeyValue(path, inner);
                return;
            }
            var key = CheckPath(path, line)!;
            if (path.Count > 2)
                throw Error(line, key.FullName, $"expected {KindName(key.Kind)}, got a table", key.Fix);
            CheckValue(key, kv.Value, line);
            lines.Set(key.FullName, line);
        }

        private void CheckTablePath(List<string> path, int line)
        {
            var key = CheckPath(path, line, header: true);
            if (key is not null)
                throw Error(line, key.FullName, $"expected {KindName(key.Kind)}, got a table", key.Fix);
            lines.Set(path[0], line);
        }

        /// <summary>Checks the first two segments exist; returns the leaf key when there are two or more.</summary>
        private ConfigKey? CheckPath(List<string> path, int line, bool header = false)
        {
            var section = path[0];
            if (!ConfigSchema.IsSection(section))
            {
                var sections = string.Join(", ", ConfigSchema.Sections.Select(x => "[" + x + "]"));
                // A bare known key at top level most likely lost its [section] header.
                if (path.Count == 1 && !header)
                {
                    if (OwnerSection(section) is { } owner)
                        throw Error(line, section, "unknown top-level key",
                            $"did you mean {owner}.{section}? put it under [{owner}]");
                    throw Error(line, section, "unknown top-level key",
                        $"the top level holds only the sections {sections}; did you mean [{Closest(section, ConfigSchema.Sections)}]?");
                }
                throw Error(line, section, "unknown section",
                    $"did you mean [{Closest(section, ConfigSchema.Sections)}]? sections: {sections}");
            }
            if (path.Count == 1) return null;

            var name = path[1];
            if (ConfigSchema.Find(section, name) is { } key) return key;

            var full = section + "." + name;
            if (ConfigSchema.Replaced(full) is { } replacement)
                throw Error(line, full, "is no longer a key", "use " + replacement);
            if (OwnerSection(name) is { } other)
                throw Error(line, full, "unknown key", $"did you mean {other}.{name}? it belongs under [{other}]");
            var known = ConfigSchema.Keys.Where(k => k.Section == section).Select(k => k.Name).ToArray();
            throw Error(line, full, "unknown key", $"did you mean {Closest(name, known)}? [{section}] keys: {string.Join(", ", known)}");
        }

        private void CheckValue(ConfigKey key, ValueSyntax? value, int line)
        {
            var ok = key.Kind switch
            {
                ConfigValueKind.Number => value is IntegerValueSyntax or FloatValueSyntax,
                ConfigValueKind.Integer => value is IntegerValueSyntax,
                ConfigValueKind.String => value is StringValueSyntax,
                ConfigValueKind.StringList => value is ArraySyntax arr && arr.Items.All(i => i.Value is StringValueSyntax),
                _ => false,
            };
            if (!ok)
                throw Error(line, key.FullName, $"expected {KindName(key.Kind)}, got {Describe(value)}", key.Fix);
            // The int properties are 32-bit: a larger TOML integer is a range error, said as such.
            if (key.Kind == ConfigValueKind.Integer && value is IntegerValueSyntax { Value: var v } && (v < int.MinValue || v > int.MaxValue))
                throw Error(line, key.FullName, $"{v.ToString(CultureInfo.InvariantCulture)} is out of range", key.Fix);
        }

        private ConfigException Error(int line, string key, string problem, string fix) =>
            new(sourceName, line, key, problem, fix);

        private static int Line(SyntaxNodeBase node) => node.Span.Start.Line + 1;

        private static string? OwnerSection(string name) =>
            ConfigSchema.Keys.FirstOrDefault(k => k.Name == name)?.Section;

        private static List<string> KeyPath(KeySyntax? key)
        {
            var path = new List<string>();
            if (key is null) return path;
            path.Add(Segment(key.Key));
            foreach (var dot in key.DotKeys)
                path.Add(Segment(dot.Key));
            return path;
        }

        private static string Segment(SyntaxNode? node) => node switch
        {
            BareKeySyntax b => b.Key?.Text ?? "",
            StringValueSyntax s => s.Value ?? "",
            _ => node?.ToString() ?? "",
        };

        private static string KindName(ConfigValueKind kind) => kind switch
        {
            ConfigValueKind.Number => "a number",
            ConfigValueKind.Integer => "an integer",
            ConfigValueKind.String => "a string",
            ConfigValueKind.StringList => "an array of strings",
            _ => kind.ToString(),
        };

        private static string Describe(ValueSyntax? value) => value switch
        {
            IntegerValueSyntax i => "integer " + i.Value.ToString(CultureInfo.InvariantCulture),
            FloatValueSyntax f => "float " + ConfigSchema.Num(f.Value),
            StringValueSyntax s => "string " + ConfigSchema.Quote(s.Value ?? ""),
            BooleanValueSyntax b => b.Value ? "boolean true" : "boolean false",
            ArraySyntax a => a.Items.All(i => i.Value is StringValueSyntax) ? "an array" : "an array with non-string items",
            InlineTableSyntax => "a table",
            DateTimeValueSyntax => "a date-time",
            null => "nothing",
            _ => "a " + value.Kind.ToString().ToLowerInvariant(),
        };

        /// <summary>
        /// The likeliest intended key: a near typo (edit distance &lt;= 2) wins; otherwise the candidate sharing
        /// most '_'-separated words ("flush_ms" → flush_interval_ms), ties broken by edit distance.
        /// </summary>
        private static string Closest(string name, IReadOnlyList<string> candidates)
        {
            var n = name.ToLowerInvariant().Replace('-', '_');
            var words = n.Split('_', StringSplitOptions.RemoveEmptyEntries);
            string best = candidates[0];
            (int Typo, int Shared, int Distance) bestScore = (int.MaxValue, int.MaxValue, int.MaxValue);
            foreach (var c in candidates)
            {
                var d = Levenshtein(n, c);
                var shared = c.Split('_').Count(w => Array.IndexOf(words, w) >= 0);
                // Lower is better on each component, compared in order.
                var score = (d <= 2 ? d : 3, -shared, d);
                if (score.CompareTo(bestScore) < 0) (best, bestScore) = (c, score);
            }
            return best;
        }

        private static int Levenshtein(string a, string b)
        {
            var prev = new int[b.Length + 1];
            var cur = new int[b.Length + 1];
            for (var j = 0; j <= b.Length; j++) prev[j] = j;
            for (var i = 1; i <= a.Length; i++)
            {
                cur[0] = i;
                for (var j = 1; j <= b.Length; j++)
                    cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
                (prev, cur) = (cur, prev);
            }
            return prev[b.Length];
        }
    }
}
