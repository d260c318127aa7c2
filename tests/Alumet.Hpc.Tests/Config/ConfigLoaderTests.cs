using Alumet.Hpc.Config;
using Tomlyn.Parsing;
using Tomlyn.Syntax;
using Xunit;

namespace Alumet.Hpc.Tests.Config;

public sealed class ConfigLoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("alumet-cfg-").FullName;
    private static readonly Dictionary<string, string> NoEnv = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string toml)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, toml);
        return path;
    }

    private string Missing => Path.Combine(_dir, "no-such-system.toml");

    private static ConfigException Fails(string toml) =>
        Assert.Throws<ConfigException>(() => ConfigLoader.Parse(toml, "f.toml"));

    private static string Defaults => ConfigLoader.Serialize(new AlumetConfig());

    // ---------- path resolution ----------

    [Fact]
    public void NoFileAnywhere_GivesDefaults()
    {
        var loaded = ConfigLoader.Load(null, NoEnv, DefaultPathPolicy.System, Missing, isRoot: true);
        Assert.Equal("defaults", loaded.Source);
        Assert.False(loaded.PerUserPaths);
        Assert.Equal(Defaults, ConfigLoader.Serialize(loaded.Config));
        Assert.Equal(1000, loaded.Config.Sampler.RaplHz);
        Assert.Equal("/var/lib/alumet-hpc/state", loaded.Config.Paths.StateDir);
    }

    [Fact]
    public void EnvVar_NamesTheFile()
    {
        var env = Write("env.toml", "[sampler]\nrapl_hz = 500\n");
        var loaded = ConfigLoader.Load(null, new Dictionary<string, string> { ["ALUMET_HPC_CONFIG"] = env },
            DefaultPathPolicy.System, Missing, isRoot: true);
        Assert.Equal(env, loaded.Source);
        Assert.Equal(500, loaded.Config.Sampler.RaplHz);
    }

    [Fact]
    public void CliPath_BeatsEnvVar_AndSystemFile()
    {
        var cli = Write("cli.toml", "[sampler]\nrapl_hz = 250\n");
        var env = Write("env.toml", "[sampler]\nrapl_hz = 500\n");
        var sys = Write("sys.toml", "[sampler]\nrapl_hz = 750\n");
        var loaded = ConfigLoader.Load(cli, new Dictionary<string, string> { ["ALUMET_HPC_CONFIG"] = env },
            DefaultPathPolicy.System, sys, isRoot: true);
        Assert.Equal(cli, loaded.Source);
        Assert.Equal(250, loaded.Config.Sampler.RaplHz);
    }

    [Fact]
    public void EnvVar_BeatsSystemFile_AndEmptyEnvVarIsIgnored()
    {
        var env = Write("env.toml", "[sampler]\nrapl_hz = 500\n");
        var sys = Write("sys.toml", "[sampler]\nrapl_hz = 750\n");
        var withEnv = ConfigLoader.Load(null, new Dictionary<string, string> { ["ALUMET_HPC_CONFIG"] = env },
            DefaultPathPolicy.System, sys, isRoot: true);
        Assert.Equal(500, withEnv.Config.Sampler.RaplHz);

        var emptyEnv = ConfigLoader.Load(null, new Dictionary<string, string> { ["ALUMET_HPC_CONFIG"] = "" },
            DefaultPathPolicy.System, sys, isRoot: true);
        Assert.Equal(sys, emptyEnv.Source);
        Assert.Equal(750, emptyEnv.Config.Sampler.RaplHz);
    }

    [Fact]
    public void RelativeCliPath_IsReportedAbsolute()
    {
        var cli = Write("rel.toml", "[sampler]\nnvml_hz = 10\n");
        var rel = Path.GetRelativePath(Environment.CurrentDirectory, cli);
        var loaded = ConfigLoader.Load(rel, NoEnv, DefaultPathPolicy.System, Missing, isRoot: true);
        Assert.Equal(cli, loaded.Source);
        Assert.Equal(10, loaded.Config.Sampler.NvmlHz);
    }

    [Fact]
    public void MissingCliFile_IsAClearError()
    {
        var path = Path.Combine(_dir, "absent.toml");
        var e = Assert.Throws<ConfigException>(() =>
            ConfigLoader.Load(path, NoEnv, DefaultPathPolicy.System, Missing, isRoot: true));
        Assert.Equal($"{path}: config file not found; check the --config path", e.Message);
        Assert.Equal(0, e.Line);
    }

    [Fact]
    public void MissingEnvFile_IsAClearError_EvenWhenTheSystemFileExists()
    {
        var path = Path.Combine(_dir, "absent.toml");
        var sys = Write("sys.toml", "");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(null,
            new Dictionary<string, string> { ["ALUMET_HPC_CONFIG"] = path }, DefaultPathPolicy.System, sys, isRoot: true));
        Assert.Equal($"{path}: config file not found; check ALUMET_HPC_CONFIG (or unset it to use {sys})", e.Message);
    }

    [Fact]
    public void DirectoryAsConfig_IsAClearError()
    {
        var e = Assert.Throws<ConfigException>(() =>
            ConfigLoader.Load(_dir, NoEnv, DefaultPathPolicy.System, Missing, isRoot: true));
        Assert.Equal($"{_dir}: is a directory, not a config file; check the --config path", e.Message);
    }

    [Fact]
    public void EmptyFile_GivesDefaults()
    {
        var f = Write("empty.toml", "# nothing set\n");
        var loaded = ConfigLoader.Load(f, NoEnv, DefaultPathPolicy.System, Missing, isRoot: true);
        Assert.Equal(f, loaded.Source);
        Assert.Equal(Defaults, ConfigLoader.Serialize(loaded.Config));
    }

    // ---------- per-user default paths ----------

    [Fact]
    public void NonRoot_DefaultPathsMoveUnderXdgDataHome()
    {
        var env = new Dictionary<string, string> { ["XDG_DATA_HOME"] = "/home/u/.xdg", ["HOME"] = "/home/u" };
        var p = ConfigLoader.Load(null, env, DefaultPathPolicy.PerUserWhenUnprivileged, Missing, isRoot: false);
        Assert.True(p.PerUserPaths);
        Assert.Equal("/home/u/.xdg/alumet-hpc/state", p.Config.Paths.StateDir);
        Assert.Equal("/home/u/.xdg/alumet-hpc/data", p.Config.Paths.DataDir);
        Assert.Equal("/home/u/.xdg/alumet-hpc/accounting.db", p.Config.Paths.Database);
        Assert.Equal("/home/u/.xdg/alumet-hpc/alumet-hpc.log", p.Config.Paths.LogFile);
        Assert.Equal("/sys/class/powercap", p.Config.Paths.PowercapRoot);
    }

    [Fact]
    public void NonRoot_WithoutXdg_UsesHomeLocalShare_AndIgnoresRelativeXdg()
    {
        var env = new Dictionary<string, string> { ["XDG_DATA_HOME"] = "rel/xdg", ["HOME"] = "/home/u" };
        var p = ConfigLoader.Load(null, env, DefaultPathPolicy.PerUserWhenUnprivileged, Missing, isRoot: false);
        Assert.Equal("/home/u/.local/share/alumet-hpc/state", p.Config.Paths.StateDir);
        Assert.Equal("/home/u/.local/share/alumet-hpc/accounting.db", p.Config.Paths.Database);
    }

    [Fact]
    public void NonRoot_KeepsPathsTheFileChanged()
    {
        var f = Write("p.toml", "[paths]\nstate_dir = \"/scratch/state\"\ndatabase = \"/var/lib/alumet-hpc/accounting.db\"\n");
        var env = new Dictionary<string, string> { ["HOME"] = "/home/u" };
        var p = ConfigLoader.Load(f, env, DefaultPathPolicy.PerUserWhenUnprivileged, Missing, isRoot: false);
        Assert.Equal("/scratch/state", p.Config.Paths.StateDir);
        // Spelled out with its default value (e.g. the example file copied to /etc): still moved.
        Assert.Equal("/home/u/.local/share/alumet-hpc/accounting.db", p.Config.Paths.Database);
        Assert.Equal("/home/u/.local/share/alumet-hpc/data", p.Config.Paths.DataDir);
    }

    [Fact]
    public void Root_OrSystemPolicy_OrNoHome_KeepsVarLib()
    {
        var env = new Dictionary<string, string> { ["HOME"] = "/home/u" };
        var root = ConfigLoader.Load(null, env, DefaultPathPolicy.PerUserWhenUnprivileged, Missing, isRoot: true);
        var sys = ConfigLoader.Load(null, env, DefaultPathPolicy.System, Missing, isRoot: false);
        var noHome = ConfigLoader.Load(null, NoEnv, DefaultPathPolicy.PerUserWhenUnprivileged, Missing, isRoot: false);
        foreach (var p in new[] { root, sys, noHome })
        {
            Assert.False(p.PerUserPaths);
            Assert.Equal("/var/lib/alumet-hpc/state", p.Config.Paths.StateDir);
            Assert.Equal("/var/log/alumet-hpc.log", p.Config.Paths.LogFile);
        }
    }

    // ---------- accepted forms ----------

    [Fact]
    public void SnakeCaseKeys_MapToProperties_InEveryTomlForm()
    {
        var c = ConfigLoader.Parse("""
            sampler.rapl_hz = 500
            estimate = { core_active_w = 12, core_idle_w = 3.5 }
            [sources]
            nvml = "off"
            [paths]
            powercap_root = "/tmp/fake/powercap"
            "state_dir" = "/srv/state"
            [report]
            admins = ["alice", "bob"]
            """, "f.toml");
        Assert.Equal(500, c.Sampler.RaplHz);
        Assert.Equal(12, c.Estimate.CoreActiveW);
        Assert.Equal(3.5, c.Estimate.CoreIdleW);
        Assert.Equal("off", c.Sources.Nvml);
        Assert.Equal("/tmp/fake/powercap", c.Paths.PowercapRoot);
        Assert.Equal("/srv/state", c.Paths.StateDir);
        Assert.Equal(["alice", "bob"], c.Report.Admins); // replaced, not appended to ["root"]
        Assert.Equal(1000, c.Sampler.StoragePeriodMs); // untouched keys keep their defaults
    }

    [Theory]
    [InlineData("sampler", "rapl_hz", "1")]
    [InlineData("sampler", "rapl_hz", "1000")]
    [InlineData("sampler", "nvml_hz", "100")]
    [InlineData("sampler", "storage_period_ms", "0")]
    [InlineData("sampler", "storage_period_ms", "100")]
    [InlineData("sampler", "storage_period_ms", "3600000")]
    [InlineData("sampler", "attribution_period_ms", "100")]
    [InlineData("sampler", "flush_interval_ms", "5000")]
    [InlineData("sampler", "attribution", "\"exclusive\"")]
    [InlineData("sampler", "parquet_values", "\"joules\"")]
    [InlineData("sampler", "tick_scheduling", "\"normal\"")]
    [InlineData("sources", "rapl", "\"on\"")]
    [InlineData("estimate", "core_idle_w", "10")]
    [InlineData("estimate", "core_active_w", "0\ncore_idle_w = 0")]
    [InlineData("paths", "nvml_library", "\"/opt/nvidia/lib/libnvidia-ml.so.1\"")]
    [InlineData("cluster", "name", "\"jean-zay_2.a\"")]
    public void BoundaryValues_AreAccepted(string section, string key, string value)
    {
        ConfigLoader.Parse($"[{section}]\n{key} = {value}\n", "f.toml");
    }

    // ---------- malformed TOML ----------

    [Fact]
    public void MissingValue_ReportsItsLine()
    {
        var e = Fails("# header\n[sampler]\nrapl_hz = 10\nnvml_hz =\nestimate_hz = 5\n");
        Assert.Equal(4, e.Line);
        Assert.StartsWith("f.toml:4: invalid TOML: ", e.Message);
        Assert.EndsWith("; fix the TOML syntax (examples/alumet.toml shows every key)", e.Message);
        Assert.Null(e.Key);
    }

    [Fact]
    public void UnclosedTableHeader_ReportsItsLine()
    {
        var e = Fails("[sampler]\nrapl_hz = 10\n\n\n[paths\nsysfs_root = \"/sys\"\n");
        Assert.Equal(5, e.Line);
        Assert.StartsWith("f.toml:5: invalid TOML: ", e.Message);
    }

    [Fact]
    public void DuplicateKey_ReportsTheSecondLine()
    {
        var e = Fails("[sampler]\nrapl_hz = 10\nrapl_hz = 20\n");
        Assert.Equal(3, e.Line);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void UnterminatedString_IsOneLine()
    {
        var e = Fails("[estimate]\nmodel = \"abc\n[paths]\n");
        Assert.Equal(2, e.Line);
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain('\r', e.Message);
    }

    // ---------- unknown keys ----------

    [Fact]
    public void UnknownTopLevelKey_SuggestsSection()
    {
        var e = Fails("\n\nsamplr = 3\n");
        Assert.Equal("f.toml:3: samplr: unknown top-level key; the top level holds only the sections [sampler], [sources], [estimate], [paths], [cluster], [report], [bmc], [calibration], [uncertainty], [facility], [carbon], [database]; did you mean [sampler]?", e.Message);
        Assert.Equal("samplr", e.Key);
    }

    [Fact]
    public void KnownKeyWithoutItsSection_SuggestsTheSection()
    {
        var e = Fails("# x\nrapl_hz = 500\n");
        Assert.Equal("f.toml:2: rapl_hz: unknown top-level key; did you mean sampler.rapl_hz? put it under [sampler]", e.Message);
    }

    [Fact]
    public void UnknownSectionHeader_SuggestsClosest()
    {
        var e = Fails("[sampler]\nrapl_hz = 10\n[path]\ncgroup_root = \"/sys/fs/cgroup\"\n");
        Assert.Equal("f.toml:3: path: unknown section; did you mean [paths]? sections: [sampler], [sources], [estimate], [paths], [cluster], [report], [bmc], [calibration], [uncertainty], [facility], [carbon], [database]", e.Message);
    }

    [Fact]
    public void UnknownNestedKey_SuggestsClosestInSection()
    {
        var e = Fails("[sampler]\nrapl_hz = 10\n\n# typo below\nstorage_perod_ms = 5\n");
        Assert.Equal(5, e.Line);
        Assert.Equal("sampler.storage_perod_ms", e.Key);
        Assert.StartsWith("f.toml:5: sampler.storage_perod_ms: unknown key; did you mean storage_period_ms? [sampler] keys: rapl_hz, ", e.Message);
    }

    [Fact]
    public void KeyInTheWrongSection_NamesItsSection()
    {
        var e = Fails("[sources]\nrapl = \"on\"\nrapl_hz = 100\n");
        Assert.Equal("f.toml:3: sources.rapl_hz: unknown key; did you mean sampler.rapl_hz? it belongs under [sampler]", e.Message);
    }

    [Fact]
    public void UnknownKey_InInlineTable_DottedKey_AndSubTableHeader()
    {
        var inline = Fails("\nsampler = { rapl_hz = 5, flush_ms = 3 }\n");
        Assert.Equal(2, inline.Line);
        Assert.Equal("sampler.flush_ms", inline.Key);
        Assert.Contains("did you mean flush_interval_ms?", inline.Message);

        var dotted = Fails("paths.cgroup = \"/sys/fs/cgroup\"\n");
        Assert.Equal(1, dotted.Line);
        Assert.Equal("paths.cgroup", dotted.Key);
        Assert.Contains("did you mean cgroup_root?", dotted.Message);

        var sub = Fails("[sampler]\nrapl_hz = 5\n[sampler.extra]\nx = 1\n");
        Assert.Equal(3, sub.Line);
        Assert.Equal("sampler.extra", sub.Key);
    }

    [Fact]
    public void ReplacedKey_SaysWhatReplacedIt()
    {
        var e = Fails("[paths]\nsysfs_root = \"/sys\"\n");
        Assert.Equal("f.toml:2: paths.sysfs_root: is no longer a key; use paths.powercap_root (e.g. \"/sys/class/powercap\") and paths.cgroup_root (e.g. \"/sys/fs/cgroup\")", e.Message);
    }

    [Fact]
    public void ValueUsedAsTable_IsATypeError()
    {
        var e = Fails("[sampler.rapl_hz]\n");
        Assert.Equal("f.toml:1: sampler.rapl_hz: expected a number, got a table; use 1..1000 (RAPL updates every ~1 ms)", e.Message);
    }

    [Fact]
    public void ArrayOfTables_IsRejected()
    {
        var e = Fails("[[sampler]]\nrapl_hz = 1\n");
        Assert.Equal("f.toml:1: sampler: is an array of tables ([[...]]); write it as a single table [sampler]", e.Message);
    }

    // ---------- wrong types ----------

    [Theory]
    [InlineData("[sampler]\nrapl_hz = \"fast\"", 2, "f.toml:2: sampler.rapl_hz: expected a number, got string \"fast\"; use 1..1000 (RAPL updates every ~1 ms)")]
    [InlineData("[sampler]\n\nstorage_period_ms = 1.5", 3, "f.toml:3: sampler.storage_period_ms: expected an integer, got float 1.5; use 0 (store every read) or 100..3600000 ms (each period is split by CPU time, which /proc/stat counts in 10 ms ticks)")]
    [InlineData("[sampler]\nattribution = true", 2, "f.toml:2: sampler.attribution: expected a string, got boolean true; use \"cgroup\" (split shared nodes by CPU time) or \"exclusive\" (whole node to the job)")]
    [InlineData("[report]\nadmins = \"root\"", 2, "f.toml:2: report.admins: expected an array of strings, got string \"root\"; use an array of user names, e.g. [\"root\", \"alice\"]")]
    [InlineData("[report]\nadmins = [\"root\", 0]", 2, "f.toml:2: report.admins: expected an array of strings, got an array with non-string items; use an array of user names, e.g. [\"root\", \"alice\"]")]
    [InlineData("[paths]\nstate_dir = { a = 1 }", 2, "f.toml:2: paths.state_dir: expected a string, got a table; use an absolute path on a local disk, e.g. \"/var/lib/alumet-hpc/state\" (not /tmp)")]
    [InlineData("x = 1\n", 1, null)]
    [InlineData("sampler = 5", 1, "f.toml:1: sampler: expected a table [sampler], got integer 5; put its keys under a [sampler] header")]
    [InlineData("[sampler]\nflush_interval_ms = 99999999999", 2, "f.toml:2: sampler.flush_interval_ms: 99999999999 is out of range; use 10..5000 ms (a crash loses at most this much data)")]
    public void WrongType_NamesKeyLineAndExpectedType(string toml, int line, string? message)
    {
        var e = Fails(toml);
        Assert.Equal(line, e.Line);
        if (message is not null) Assert.Equal(message, e.Message);
    }

    // ---------- validation rules ----------

    [Theory]
    [InlineData("sampler", "rapl_hz", "5000", "5000 is out of range; use 1..1000 (RAPL updates every ~1 ms)")]
    [InlineData("sampler", "rapl_hz", "0", "0 is out of range; use 1..1000 (RAPL updates every ~1 ms)")]
    [InlineData("sampler", "rapl_hz", "0.5", "0.5 is out of range; use 1..1000 (RAPL updates every ~1 ms)")]
    [InlineData("sampler", "rapl_hz", "nan", "nan is not a finite number; use 1..1000 (RAPL updates every ~1 ms)")]
    [InlineData("sampler", "estimate_hz", "1001", "1001 is out of range; use 1..1000 (the model reads /proc/stat; 10 is plenty)")]
    [InlineData("sampler", "estimate_hz", "0", "0 is out of range; use 1..1000 (the model reads /proc/stat; 10 is plenty)")]
    [InlineData("sampler", "nvml_hz", "101", "101 is out of range; use 1..100 (the GPU energy counter refreshes every 20-100 ms)")]
    [InlineData("sampler", "nvml_hz", "0.9", "0.9 is out of range; use 1..100 (the GPU energy counter refreshes every 20-100 ms)")]
    [InlineData("sampler", "storage_period_ms", "-1", "-1 is out of range; use 0 (store every read) or 100..3600000 ms (each period is split by CPU time, which /proc/stat counts in 10 ms ticks)")]
    [InlineData("sampler", "storage_period_ms", "10", "10 is out of range; use 0 (store every read) or 100..3600000 ms (each period is split by CPU time, which /proc/stat counts in 10 ms ticks)")]
    [InlineData("sampler", "storage_period_ms", "99", "99 is out of range; use 0 (store every read) or 100..3600000 ms (each period is split by CPU time, which /proc/stat counts in 10 ms ticks)")]
    [InlineData("sampler", "storage_period_ms", "3600001", "3600001 is out of range; use 0 (store every read) or 100..3600000 ms (each period is split by CPU time, which /proc/stat counts in 10 ms ticks)")]
    [InlineData("sampler", "attribution_period_ms", "10", "10 is out of range; use 100..60000 ms (each period is split by CPU time, which /proc/stat counts in 10 ms ticks)")]
    [InlineData("sampler", "attribution_period_ms", "60001", "60001 is out of range; use 100..60000 ms (each period is split by CPU time, which /proc/stat counts in 10 ms ticks)")]
    [InlineData("sampler", "flush_interval_ms", "9", "9 is out of range; use 10..5000 ms (a crash loses at most this much data)")]
    [InlineData("sampler", "flush_interval_ms", "5001", "5001 is out of range; use 10..5000 ms (a crash loses at most this much data)")]
    [InlineData("sampler", "max_power_w", "0", "0 must be greater than 0; use a positive power in W, above what one RAPL domain can draw (e.g. 1000)")]
    [InlineData("sampler", "max_power_w", "-inf", "-inf is not a finite number; use a positive power in W, above what one RAPL domain can draw (e.g. 1000)")]
    [InlineData("sampler", "attribution", "\"shared\"", "\"shared\" is not an allowed value; use \"cgroup\" (split shared nodes by CPU time) or \"exclusive\" (whole node to the job)")]
    [InlineData("sampler", "attribution", "\"Cgroup\"", "\"Cgroup\" is not an allowed value; use \"cgroup\" (split shared nodes by CPU time) or \"exclusive\" (whole node to the job)")]
    [InlineData("sampler", "tick_scheduling", "\"rt\"", "\"rt\" is not an allowed value; use \"fifo\" (real-time priority 1 for the tick thread when root) or \"normal\"")]
    [InlineData("sampler", "parquet_values", "\"double\"", "\"double\" is not an allowed value; use \"raw\" (energy_raw, INT64 counter units) or \"joules\" (adds energy_j, DOUBLE J)")]
    [InlineData("sampler", "cgroup_wait_s", "0", "0 must be greater than 0; use a positive number of seconds, at most 3600")]
    [InlineData("sampler", "cgroup_wait_s", "3601", "3601 is implausibly large; use a positive number of seconds, at most 3600")]
    [InlineData("sampler", "job_gone_grace_s", "-5", "-5 must be greater than 0; use a positive number of seconds, at most 3600")]
    [InlineData("sampler", "max_lifetime_h", "0", "0 must be greater than 0; use a positive number of hours, at most 8784 (one year)")]
    [InlineData("sampler", "max_lifetime_h", "9000", "9000 is implausibly large; use a positive number of hours, at most 8784 (one year)")]
    [InlineData("sampler", "stop_timeout_s", "0", "0 must be greater than 0; use a positive number of seconds, at most 300 (the epilog waits this long)")]
    [InlineData("sampler", "stop_timeout_s", "301", "301 is implausibly large; use a positive number of seconds, at most 300 (the epilog waits this long)")]
    [InlineData("sources", "rapl", "\"yes\"", "\"yes\" is not an allowed value; use \"auto\", \"on\" or \"off\"")]
    [InlineData("sources", "estimate", "\"always\"", "\"always\" is not an allowed value; use \"auto\", \"on\" or \"off\"")]
    [InlineData("sources", "nvml", "\"on\"", "\"on\" is not an allowed value; use \"auto\" or \"off\"")]
    [InlineData("estimate", "model", "\"\"", "is empty; use a short name without control characters, e.g. \"generic-per-core\"")]
    [InlineData("estimate", "model", "\"a\\nb\"", "\"a\\nb\" contains a control character; use a short name without control characters, e.g. \"generic-per-core\"")]
    [InlineData("estimate", "core_active_w", "-1", "-1 is negative; use a power in W, 0 or more (e.g. 10)")]
    [InlineData("estimate", "core_idle_w", "-0.5", "-0.5 is negative; use a power in W from 0 up to estimate.core_active_w")]
    [InlineData("estimate", "core_idle_w", "12", "12 is above core_active_w (10), an idle core cannot draw more than a busy one; use a power in W from 0 up to estimate.core_active_w")]
    [InlineData("paths", "powercap_root", "\"sys/class/powercap\"", "\"sys/class/powercap\" is not an absolute path; use an absolute path, e.g. \"/sys/class/powercap\"")]
    [InlineData("paths", "cgroup_root", "\"cgroup\"", "\"cgroup\" is not an absolute path; use an absolute path, e.g. \"/sys/fs/cgroup\"")]
    [InlineData("paths", "procfs_root", "\"\"", "is empty; use an absolute path, e.g. \"/proc\"")]
    [InlineData("paths", "state_dir", "\"./state\"", "\"./state\" is not an absolute path; use an absolute path on a local disk, e.g. \"/var/lib/alumet-hpc/state\" (not /tmp)")]
    [InlineData("paths", "data_dir", "\"data\"", "\"data\" is not an absolute path; use an absolute path, e.g. \"/var/lib/alumet-hpc/data\"")]
    [InlineData("paths", "database", "\"acc.db\"", "\"acc.db\" is not an absolute path; use an absolute file path, e.g. \"/var/lib/alumet-hpc/accounting.db\"")]
    [InlineData("paths", "log_file", "\"~/x.log\"", "\"~/x.log\" is not an absolute path; use an absolute file path, e.g. \"/var/log/alumet-hpc.log\"")]
    [InlineData("paths", "nvml_library", "\"lib/libnvidia-ml.so\"", "\"lib/libnvidia-ml.so\" is a relative path; use a library name such as \"libnvidia-ml.so.1\" or an absolute path")]
    [InlineData("cluster", "name", "\"my cluster\"", "\"my cluster\" contains \" \"; use letters, digits, '.', '_' or '-' (at most 64), or \"\" for SLURM_CLUSTER_NAME")]
    [InlineData("report", "admins", "[\"root\", \"\"]", "contains an empty user name; use an array of user names, e.g. [\"root\", \"alice\"]")]
    [InlineData("facility", "pue_file", "\"/etc/alumet-hpc/pue.csv\"\npue = 1.3", "is set together with pue = 1.3, which the file would silently override; use \"\" or an absolute path to a CSV file (docs/carbon.md), and pue = 0 beside a file")]
    [InlineData("carbon", "intensity_file", "\"/etc/alumet-hpc/ci.csv\"\nintensity_g_per_kwh = 56", "is set together with intensity_g_per_kwh = 56, which the file would silently override; use \"\" or an absolute path to a CSV file (docs/carbon.md), and intensity_g_per_kwh = 0 beside a file")]
    [InlineData("report", "admins", "[\"bad user\"]", "\"bad user\" is not a valid user name; use an array of user names, e.g. [\"root\", \"alice\"]")]
    public void EachRule_RejectsABadValue_AtItsLine(string section, string key, string value, string expected)
    {
        // Comments and another key first, so a wrong line number cannot pass by accident.
        var toml = $"# test file\n\n[{section}]\n# the bad key:\n{key} = {value}\n";
        var e = Fails(toml);
        Assert.Equal($"f.toml:5: {section}.{key}: {expected}", e.Message);
        Assert.Equal(5, e.Line);
        Assert.Equal($"{section}.{key}", e.Key);
    }

    [Fact]
    public void SeveralBadValues_ReportTheEarliestLine()
    {
        var e = Fails("[sources]\nnvml = \"on\"\n[sampler]\nrapl_hz = 0\n");
        Assert.Equal(2, e.Line);
        Assert.Equal("sources.nvml", e.Key);
    }

    [Fact]
    public void IdleAboveActive_PointsAtIdleEvenWhenActiveComesLater()
    {
        var e = Fails("[estimate]\ncore_idle_w = 5\ncore_active_w = 4\n");
        Assert.Equal("f.toml:2: estimate.core_idle_w: 5 is above core_active_w (4), an idle core cannot draw more than a busy one; use a power in W from 0 up to estimate.core_active_w", e.Message);
    }

    [Fact]
    public void Validate_ChecksAConfigBuiltInCode()
    {
        var c = new AlumetConfig();
        ConfigLoader.Validate(c);
        c.Sampler.NvmlHz = 500;
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Validate(c));
        Assert.Equal("defaults: sampler.nvml_hz: 500 is out of range; use 1..100 (the GPU energy counter refreshes every 20-100 ms)", e.Message);
    }

    [Fact]
    public void FileErrors_CarryTheFilePath()
    {
        var f = Write("bad.toml", "[sampler]\nrapl_hz = 5000\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.LoadFile(f));
        Assert.Equal($"{f}:2: sampler.rapl_hz: 5000 is out of range; use 1..1000 (RAPL updates every ~1 ms)", e.Message);
        Assert.Equal(f, e.File);
    }

    // ---------- docs and defaults cannot drift ----------

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Alumet.Hpc.sln"))) return d.FullName;
        throw new InvalidOperationException("Alumet.Hpc.sln not found above " + AppContext.BaseDirectory);
    }

    private static string ExamplePath => Path.Combine(RepoRoot(), "examples", "alumet.toml");

    /// <summary>(section, key) pairs written in a TOML text, read from Tomlyn's syntax tree.</summary>
    private static SortedSet<string> KeysIn(string toml)
    {
        var doc = SyntaxParser.Parse(toml, "x", true);
        Assert.False(doc.HasErrors);
        Assert.Empty(doc.KeyValues);
        var keys = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var table in doc.Tables)
            foreach (var kv in table.Items)
                keys.Add(table.Name!.ToString().Trim() + "." + kv.Key!.ToString().Trim());
        return keys;
    }

    [Fact]
    public void ExampleFile_EqualsTheDefaults()
    {
        var loaded = ConfigLoader.Load(ExamplePath, NoEnv, DefaultPathPolicy.System, Missing, isRoot: true);
        Assert.Equal(Defaults, ConfigLoader.Serialize(loaded.Config));
    }

    [Fact]
    public void ExampleFile_HasEveryPropertyOfEverySection()
    {
        // Keys the source-generated serializer writes = every property, snake_cased.
        var properties = KeysIn(Defaults);
        var example = KeysIn(File.ReadAllText(ExamplePath));
        var schema = new SortedSet<string>(ConfigSchema.Keys.Select(k => k.FullName), StringComparer.Ordinal);
        Assert.Equal(75, properties.Count);
        Assert.Equal(properties, schema);
        Assert.Equal(properties, example);
    }

    [Fact]
    public void ExampleFile_DocumentsEveryKey()
    {
        // Each key line is preceded by at least one comment line (unit, allowed values, why).
        var lines = File.ReadAllLines(ExamplePath);
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0 || lines[i][0] is '#' or '[') continue;
            Assert.True(i > 0 && lines[i - 1].StartsWith('#'), $"examples/alumet.toml:{i + 1} has no comment above it");
        }
    }
}
