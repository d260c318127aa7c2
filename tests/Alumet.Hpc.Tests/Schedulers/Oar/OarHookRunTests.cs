using System.Collections;
using System.Diagnostics.CodeAnalysis;
using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Schedulers.Oar;

namespace Alumet.Hpc.Tests.Schedulers.Oar;

/// <summary>OarHook.Run's last resort: whatever escapes it is one line of ours, and the hook exits 0.</summary>
[Collection("Log")]
public sealed class OarHookRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("alumet-oar-hook-").FullName;

    public OarHookRunTests() => Log.Configure(Path.Combine(_dir, "alumet.log"), "alumet-hpc", syslog: false, stderr: false);

    public void Dispose()
    {
        Log.Configure(null, "alumet-hpc", syslog: false, stderr: false);
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>An environment whose every read fails: what OarHook.Run's own validation never expects.</summary>
    private sealed class FailingEnvironment : IReadOnlyDictionary<string, string>
    {
        public string this[string key] => throw new InvalidOperationException("boom");
        public IEnumerable<string> Keys => throw new InvalidOperationException("boom");
        public IEnumerable<string> Values => throw new InvalidOperationException("boom");
        public int Count => throw new InvalidOperationException("boom");
        public bool ContainsKey(string key) => throw new InvalidOperationException("boom");
        public bool TryGetValue(string key, [MaybeNullWhen(false)] out string value) => throw new InvalidOperationException("boom");
        public IEnumerator<KeyValuePair<string, string>> GetEnumerator() => throw new InvalidOperationException("boom");
        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>Fails on 26325a9: the line was "oar prologue: InvalidOperationException: boom" (the type name).</summary>
    [Fact]
    public void AnExceptionIsLoggedInOurWordsAndExitIsZero()
    {
        var config = new AlumetConfig();
        config.Paths.StateDir = Path.Combine(_dir, "state");
        Assert.Equal(0, OarHook.Run("prologue", ["5", "alice", "/var/lib/oar/5"], new FailingEnvironment(), config, null));
        string line = Assert.Single(File.ReadAllLines(Path.Combine(_dir, "alumet.log")));
        Assert.EndsWith(" error: oar prologue: failed: boom", line);
    }
}
