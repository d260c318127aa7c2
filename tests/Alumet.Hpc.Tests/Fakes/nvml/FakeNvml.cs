using System.Diagnostics;

namespace Alumet.Hpc.Tests.Fakes.Nvml;

/// <summary>
/// A scripted fake <c>libnvidia-ml.so.1</c> (fake_nvml.c) in a temp directory of its own.
/// The C source is compiled once per test run; each instance gets its own copy of the library plus a
/// <c>fake_nvml.script</c> beside it, so tests run in parallel without sharing the library's global state
/// or a process-wide environment variable (dlopen loads a distinct copy per path/inode).
/// </summary>
public sealed class FakeNvml : TempTree
{
    private static readonly Lazy<string> Compiled = new(Compile, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Path of the library compiled for this test run (no script beside it).</summary>
    public static string CompiledLibrary => Compiled.Value;

    public string LibraryPath { get; }
    public string ScriptPath => PathOf("fake_nvml.script");

    public FakeNvml(string script) : base("alumet-nvml")
    {
        LibraryPath = PathOf("libnvidia-ml.so.1");
        File.Copy(CompiledLibrary, LibraryPath);
        File.WriteAllText(ScriptPath, script);
    }

    /// <summary>Writes a value file the script refers to with <c>file:</c> (a number, <c>err:N</c> or <c>unsupported</c>).</summary>
    public string Set(string name, string value)
    {
        string path = PathOf(name);
        File.WriteAllText(path, value);
        return path;
    }

    public string Set(string name, ulong value) => Set(name, value.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private (double MilliJoules, long T0Ns, double MilliWatts) _line;

    /// <summary>
    /// The <c>energy_line</c> file <paramref name="name"/> (one per fake): from now on the counter grows at
    /// <paramref name="watts"/> from the value the previous line gives now (0 for the first). Written whole, by a rename:
    /// a call at that moment reads the old line or the new one, never a partial file.
    /// </summary>
    public void SetPower(string name, double watts)
    {
        long now = Alumet.Hpc.Core.Clock.MonotonicNs(); // CLOCK_MONOTONIC, the fake's clock
        _line = (_line.MilliJoules + _line.MilliWatts * Math.Max(0, now - _line.T0Ns) / 1e9, now, watts * 1000);
        Alumet.Hpc.Core.AtomicFile.WriteAllText(PathOf(name), string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{(ulong)Math.Round(_line.MilliJoules)} {now} {(ulong)Math.Round(_line.MilliWatts)}\n"));
    }

    /// <summary>Compiles C source to a shared library with gcc; returns its path.</summary>
    public static string CompileShared(string cSource, string outputPath)
    {
        var psi = new ProcessStartInfo("gcc") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string a in new[] { "-shared", "-fPIC", "-O2", "-o", outputPath, cSource, "-ldl" })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string stderr = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"gcc failed ({p.ExitCode}) for {cSource}: {stderr}");
        return outputPath;
    }

    private static string Compile()
    {
        string source = Path.Combine(AppContext.BaseDirectory, "Fakes", "nvml", "fake_nvml.c");
        string dir = Path.Combine(Path.GetTempPath(), $"alumet-fake-nvml-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        };
        return CompileShared(source, Path.Combine(dir, "libnvidia-ml.so.1"));
    }
}
