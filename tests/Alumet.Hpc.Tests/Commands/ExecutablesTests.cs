using System.ComponentModel;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Commands;

/// <summary>
/// The executables the tests put in place then run (<see cref="Executables"/>), against copies of the test host that
/// hold every descriptor it had (<see cref="ForkHolder"/>): what the children that other tests' Process.Start fork hold
/// until their execve, held long enough that the race is not one.
/// </summary>
[Collection(AloneCollection.Name)]
public sealed class ExecutablesTests : IDisposable
{
    private const int ETXTBSY = 26;
    private readonly TempTree _tree = new("executables");

    public void Dispose() => _tree.Dispose();

    /// <summary>
    /// The hazard, made certain: a file that the test host itself writes (as File.WriteAllText and File.Copy do: open,
    /// write, close) while it forks cannot be run until the forked child lets the descriptor go (here 2 s; a child of
    /// Process.Start, at its execve).
    /// </summary>
    [Fact]
    public void AFileTheHostWritesWhileItForksCannotBeRunUntilTheChildLetsItsDescriptorGo()
    {
        string path = _tree.PathOf("stand-in");
        using var holder = new ForkHolder(holdMs: 2000);
        using (var w = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            w.Write("#!/bin/sh\nexit 3\n"u8);
            holder.Hold(); // another test's Process.Start, forked now
        }
        File.SetUnixFileMode(path, Executables.Runnable);
        var e = Assert.Throws<Win32Exception>(() => Process.Start(path)!.Dispose());
        Assert.True(e.NativeErrorCode == ETXTBSY, e.Message);
    }

    /// <summary>
    /// The binary's copy and a script from <see cref="Executables"/> run at once, while a copy of the test host is made
    /// every millisecond or so and holds every descriptor the host had for 300 ms: the host never has one of theirs.
    /// </summary>
    [Fact]
    public void WhatExecutablesWritesRunsAtOnceWhileTheHostKeepsForking()
    {
        var failed = new List<string>();
        int made;
        using (var holder = new ForkHolder(holdMs: 300).Continuously(everyMs: 1))
        {
            for (int i = 0; i < 5; i++)
            {
                string copy = Executables.Copy(TestInstallation.Binary(), _tree.PathOf($"alumet-hpc-{i}"));
                string script = Executables.Write(_tree.PathOf($"stand-in-{i}"), "#!/bin/sh\nexit 3\n");
                foreach (var (program, expected) in new[] { (copy, 0), (script, 3) })
                {
                    try
                    {
                        using var p = Process.Start(new ProcessStartInfo(program, ["--version"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
                        p.StandardOutput.ReadToEnd();
                        p.WaitForExit();
                        if (p.ExitCode != expected) failed.Add($"{program}: exit {p.ExitCode}");
                    }
                    catch (Win32Exception e) { failed.Add($"{program}: {e.Message}"); }
                }
            }
            made = holder.Made;
        }
        Assert.True(made >= 10, $"only {made} copies of the host were made");
        Assert.True(failed.Count == 0, $"{failed.Count} of 10 executables could not run ({made} copies of the host made):\n{string.Join("\n", failed)}");
    }

    /// <summary>
    /// No test writes a file itself and then makes it executable (File.Copy, File.WriteAllText or a TempTree's Write,
    /// then within 10 lines File.SetUnixFileMode of the same path with an x bit): its executables come from
    /// <see cref="Executables"/>. On 69c27c5 it lists 10 such lines in 8 files, SampleBinaryTests' copies of the binary
    /// among them.
    /// </summary>
    [Fact]
    public void EveryExecutableATestWritesComesFromExecutables()
    {
        if (TestSources.Root() is not { } tests) return; // no source tree beside the tests
        var write = new Regex(@"\bFile\.(Copy|WriteAllText|WriteAllBytes|AppendAllText)\(|\b\w+\.Write\(");
        var chmod = new Regex(@"\bFile\.SetUnixFileMode\(([^,]*(?:\([^)]*\))?[^,]*),(.*)");
        var found = new List<string>();
        foreach (var (file, lines) in TestSources.Files(tests))
        {
            if (Path.GetFileName(file) == nameof(ExecutablesTests) + ".cs") continue;
            for (int i = 0; i < lines.Length; i++)
            {
                if (chmod.Match(lines[i]) is not { Success: true } m || !Runnable(m.Groups[2].Value)) continue;
                var target = Regex.Matches(m.Groups[1].Value, @"[A-Za-z_]\w*").Select(t => t.Value).Except(["Path", "Combine"]).ToList();
                if (lines[Math.Max(0, i - 10)..(i + 1)].Any(l => write.IsMatch(l) && target.Any(t => Regex.IsMatch(l, $@"\b{Regex.Escape(t)}\b"))))
                    found.Add($"{file}:{i + 1}: {lines[i].Trim()}");
            }
        }
        Assert.True(found.Count == 0, $"{found.Count} file(s) written by a test then made executable, not by Executables:\n{string.Join("\n", found)}");

        static bool Runnable(string mode) => mode.Contains("Execute", StringComparison.Ordinal)
            || Regex.Matches(mode, "0b([01_]+)").Any(b => (Convert.ToInt32(b.Groups[1].Value.Replace("_", ""), 2) & 0b001_001_001) != 0);
    }
}
