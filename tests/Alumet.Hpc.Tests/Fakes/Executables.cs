using System.Diagnostics;
using System.Globalization;

namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// An executable that a test puts in place and then runs, or has the binary run (a copy of alumet-hpc or of the
/// sampler in a directory of its own, a stand-in script): written by a child process, install(1), never through a
/// descriptor of the test host. A file the test host writes itself (File.Copy, File.WriteAllText) is open for writing in
/// the host for a while, and every process the host forks meanwhile (Process.Start by any test running at the same time)
/// holds that descriptor until its own execve closes it (O_CLOEXEC does not close it sooner): an execve of the new file
/// in that window fails with ETXTBSY, "Text file busy" (SampleBinaryTests.WithoutARunnableAlumetHpcSamplerBesideItSample
/// SamplesInAlumetHpc failed so once). Writing to a temporary name then renaming does not help: the descriptor is the
/// inode's, whatever its name. install's descriptor is in install alone, which forks nothing, and is closed when it
/// exits (ExecutablesTests).
/// </summary>
public static class Executables
{
    /// <summary>rwxr-xr-x.</summary>
    public const UnixFileMode Runnable = (UnixFileMode)0b111_101_101;

    /// <summary>A copy of <paramref name="from"/> at <paramref name="to"/> (replaced if there), mode <paramref name="mode"/>; returns <paramref name="to"/>.</summary>
    public static string Copy(string from, string to, UnixFileMode mode = Runnable)
    {
        Install(from, to, mode);
        return to;
    }

    /// <summary>A file <paramref name="path"/> holding <paramref name="text"/>, mode <paramref name="mode"/> (a script: "#!/bin/sh\n..."); returns <paramref name="path"/>.</summary>
    public static string Write(string path, string text, UnixFileMode mode = Runnable)
    {
        // The text goes through a file of the host's that is never run, the executable is install's.
        string source = Path.Combine(Path.GetTempPath(), $"alumet-executable-{Guid.NewGuid():N}");
        File.WriteAllText(source, text);
        try { Install(source, path, mode); }
        finally { File.Delete(source); }
        return path;
    }

    private static void Install(string from, string to, UnixFileMode mode)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(to))!);
        var psi = new ProcessStartInfo("install", ["-m", Convert.ToString((int)mode, 8).PadLeft(4, '0'), "--", from, to])
            { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        stdout.Wait();
        if (p.ExitCode != 0)
            throw new IOException(string.Create(CultureInfo.InvariantCulture, $"install {from} {to}: exit {p.ExitCode}: {stderr}"));
    }
}
