namespace Alumet.Hpc.Tests.Fakes;

/// <summary>The test project's own C# sources, for the tests that scan them (ExecIdsTests, ExecutablesTests, ExecInTheTestHostTests).</summary>
public static class TestSources
{
    /// <summary>tests/Alumet.Hpc.Tests of the source tree these tests were built in, or null where none is beside them.</summary>
    public static string? Root()
    {
        string dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "Alumet.Hpc.sln")))
            if (Path.GetDirectoryName(dir) is { } up) dir = up; else return null;
        return Path.Combine(dir, "tests", "Alumet.Hpc.Tests");
    }

    /// <summary>Its .cs files (obj/ left out), in path order: each one's path relative to <paramref name="root"/> and its lines.</summary>
    public static IEnumerable<(string File, string[] Lines)> Files(string root) =>
        Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => Path.GetRelativePath(root, f))
            .Where(f => !f.StartsWith("obj" + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            .Select(f => (f, File.ReadAllLines(Path.Combine(root, f))));

    /// <summary>Every line of those files, trimmed, with its file and number (from 1).</summary>
    public static IEnumerable<(string File, int Line, string Text)> Lines(string root) =>
        Files(root).SelectMany(f => f.Lines.Select((line, i) => (f.File, i + 1, line.Trim())));
}
