using Alumet.Hpc.Schedulers;
using Alumet.Hpc.Tests.Fakes;

namespace Alumet.Hpc.Tests.Schedulers;

/// <summary>Whatever goes wrong around a hook, it exits 0 (a non-zero hook drains or suspects the node).</summary>
[Collection("Log")]
public class HookHostTests
{
    [Fact]
    public void BrokenConfigRunsNothingAndExitsZero()
    {
        using var dir = new TempTree("hookhost");
        string cfg = dir.Write("alumet.toml", "[sampler]\nrapl_hz = 5000\n");
        bool ran = false;
        Assert.Equal(0, HookHost.Run("test hook", cfg, (_, _) => { ran = true; return 0; }));
        Assert.False(ran);
    }

    [Fact]
    public void AThrowingHookStillExitsZeroAndSeesTheEnvironmentAndConfig()
    {
        using var dir = new TempTree("hookhost");
        string cfg = dir.Write("alumet.toml", $"[paths]\nlog_file = \"{dir.PathOf("hook.log")}\"\n");
        Environment.SetEnvironmentVariable("ALUMET_HOOKHOST_TEST", "42");
        string? seen = null, source = null;
        Assert.Equal(0, HookHost.Run("test hook", cfg, (env, loaded) =>
        {
            seen = env["ALUMET_HOOKHOST_TEST"];
            source = loaded.Source;
            throw new InvalidOperationException("boom");
        }));
        Assert.Equal("42", seen);
        Assert.Equal(cfg, source);
        // Said once, in the log (it used to be swallowed: exit 0 and no word anywhere).
        Assert.Single(File.ReadLines(dir.PathOf("hook.log")), l => l.EndsWith(" error: test hook: failed: boom", StringComparison.Ordinal));
    }

    [Fact]
    public void AnUnusableStateDirIsSaidOnceByTheHookNotTwice()
    {
        using var dir = new TempTree("hookhost");
        string cfg = dir.Write("alumet.toml", $"[paths]\nlog_file = \"{dir.PathOf("hook.log")}\"\nstate_dir = \"/proc/nope/state\"\n");
        Assert.Equal(0, HookHost.Run("test hook", cfg, (_, _) => 0, "slurm"));
        Assert.False(File.Exists(dir.PathOf("hook.log")) && File.ReadAllText(dir.PathOf("hook.log")).Contains("root's only"));
    }
}
