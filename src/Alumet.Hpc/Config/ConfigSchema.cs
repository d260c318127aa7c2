using System.Globalization;

namespace Alumet.Hpc.Config;

/// <summary>TOML value shapes the config uses. Number accepts TOML integers and floats.</summary>
internal enum ConfigValueKind { Number, Integer, String, StringList }

/// <summary>
/// One known key: where it lives, what shape it takes, how to fix a bad value, and its rule.
/// <paramref name="Check"/> returns what is wrong with the loaded value, or null when it is fine.
/// </summary>
internal sealed record ConfigKey(
    string Section, string Name, ConfigValueKind Kind, string Fix, Func<AlumetConfig, string?> Check)
{
    public string FullName => Section + "." + Name;
}

/// <summary>
/// The known key set, written out by hand because reflection is off the table (NativeAOT).
/// A test checks it against the keys the source-generated serializer emits, so it cannot drift from
/// the properties in <see cref="AlumetConfig"/>.
/// </summary>
internal static class ConfigSchema
{
    public static readonly string[] Sections = ["sampler", "sources", "estimate", "paths", "cluster", "report", "bmc", "calibration", "uncertainty", "facility", "carbon", "database"];

    public static readonly ConfigKey[] Keys =
    [
        // [sampler]
        new("sampler", "rapl_hz", ConfigValueKind.Number, "use 1..1000 (RAPL updates every ~1 ms)",
            c => Range(c.Sampler.RaplHz, 1, 1000)),
        new("sampler", "estimate_hz", ConfigValueKind.Number, "use 1..1000 (the model reads /proc/stat; 10 is plenty)",
            c => Range(c.Sampler.EstimateHz, 1, 1000)),
        new("sampler", "tick_scheduling", ConfigValueKind.String, "use \"fifo\" (real-time priority 1 for the tick thread when root) or \"normal\"",
            c => OneOf(c.Sampler.TickScheduling, "fifo", "normal")),
        new("sampler", "nvml_hz", ConfigValueKind.Number, "use 1..100 (the GPU energy counter refreshes every 20-100 ms)",
            c => Range(c.Sampler.NvmlHz, 1, 100)),
        // Each period (the storage period; the attribution period at raw storage) is split by CPU time, which /proc/stat
        // counts in 10 ms ticks (Sources/Estimate/ProcStat.UserHz) against the cgroups' ns: over shorter periods the node's
        // busy time is mostly its rounding, and the split's max() then charges idle and system energy to the jobs
        // (README "Attribution"). 100 ms keeps that rounding within one tick in ten.
        new("sampler", "storage_period_ms", ConfigValueKind.Integer, "use 0 (store every read) or 100..3600000 ms (each period is split by CPU time, which /proc/stat counts in 10 ms ticks)",
            c => c.Sampler.StoragePeriodMs == 0 ? null : Range(c.Sampler.StoragePeriodMs, 100, 3_600_000)),
        new("sampler", "parquet_values", ConfigValueKind.String, "use \"raw\" (energy_raw, INT64 counter units) or \"joules\" (adds energy_j, DOUBLE J)",
            c => OneOf(c.Sampler.ParquetValues, "joules", "raw")),
        new("sampler", "attribution_period_ms", ConfigValueKind.Integer, "use 100..60000 ms (each period is split by CPU time, which /proc/stat counts in 10 ms ticks)",
            c => Range(c.Sampler.AttributionPeriodMs, 100, 60_000)),
        new("sampler", "flush_interval_ms", ConfigValueKind.Integer, "use 10..5000 ms (a crash loses at most this much data)",
            c => Range(c.Sampler.FlushIntervalMs, 10, 5_000)),
        new("sampler", "max_power_w", ConfigValueKind.Number, "use a positive power in W, above what one RAPL domain can draw (e.g. 1000)",
            c => Positive(c.Sampler.MaxPowerW, 1_000_000)),
        new("sampler", "attribution", ConfigValueKind.String, "use \"cgroup\" (split shared nodes by CPU time) or \"exclusive\" (whole node to the job)",
            c => OneOf(c.Sampler.Attribution, "cgroup", "exclusive")),
        new("sampler", "cgroup_wait_s", ConfigValueKind.Number, "use a positive number of seconds, at most 3600",
            c => Positive(c.Sampler.CgroupWaitS, 3600)),
        new("sampler", "job_gone_grace_s", ConfigValueKind.Number, "use a positive number of seconds, at most 3600",
            c => Positive(c.Sampler.JobGoneGraceS, 3600)),
        new("sampler", "max_lifetime_h", ConfigValueKind.Number, "use a positive number of hours, at most 8784 (one year)",
            c => Positive(c.Sampler.MaxLifetimeH, 8784)),
        new("sampler", "stop_timeout_s", ConfigValueKind.Number, "use a positive number of seconds, at most 300 (the epilog waits this long)",
            c => Positive(c.Sampler.StopTimeoutS, 300)),
        new("sampler", "linger_s", ConfigValueKind.Number, "use 0..86400 s (0: the node sampler exits with its last job)",
            c => NonNegative(c.Sampler.LingerS, 86_400)),
        new("sampler", "job_raw", ConfigValueKind.String, "use \"allow\" (a job may ask for raw storage: --comment=alumet:raw) or \"deny\"",
            c => OneOf(c.Sampler.JobRaw, "allow", "deny")),
        new("sampler", "keep_state", ConfigValueKind.String, "use \"failed\" (remove a job's state once finalized) or \"always\" (keep it until state_max_age_h)",
            c => OneOf(c.Sampler.KeepState, "failed", "always")),
        new("sampler", "state_max_age_h", ConfigValueKind.Number, "use a positive number of hours, at most 8784 (one year)",
            c => Positive(c.Sampler.StateMaxAgeH, 8784)),

        // [sources]
        new("sources", "rapl", ConfigValueKind.String, "use \"auto\", \"on\" or \"off\"",
            c => OneOf(c.Sources.Rapl, "auto", "on", "off")),
        new("sources", "rapl_interface", ConfigValueKind.String, "use \"auto\", \"perf\", \"powercap\" or \"msr\"",
            c => OneOf(c.Sources.RaplInterface, "auto", "perf", "powercap", "msr")),
        new("sources", "msr_dram_unit", ConfigValueKind.String, "use \"auto\", \"fixed\" (2^-16 J) or \"esu\" (the unit register's)",
            c => OneOf(c.Sources.MsrDramUnit, "auto", "fixed", "esu")),
        new("sources", "estimate", ConfigValueKind.String, "use \"auto\", \"on\" or \"off\"",
            c => OneOf(c.Sources.Estimate, "auto", "on", "off")),
        new("sources", "nvml", ConfigValueKind.String, "use \"auto\" or \"off\"",
            c => OneOf(c.Sources.Nvml, "auto", "off")),
        new("sources", "bmc", ConfigValueKind.String, "use \"auto\", \"on\" or \"off\"",
            c => OneOf(c.Sources.Bmc, "auto", "on", "off")),

        // [estimate]
        new("estimate", "model", ConfigValueKind.String, "use a short name without control characters, e.g. \"generic-per-core\"",
            c => Label(c.Estimate.Model, 64)),
        new("estimate", "core_active_w", ConfigValueKind.Number, "use a power in W, 0 or more (e.g. 10)",
            c => NonNegative(c.Estimate.CoreActiveW, 10_000)),
        new("estimate", "core_idle_w", ConfigValueKind.Number, "use a power in W from 0 up to estimate.core_active_w",
            c => NonNegative(c.Estimate.CoreIdleW, 10_000)
                 ?? (c.Estimate.CoreIdleW > c.Estimate.CoreActiveW
                     ? $"{Num(c.Estimate.CoreIdleW)} is above core_active_w ({Num(c.Estimate.CoreActiveW)}), an idle core cannot draw more than a busy one"
                     : null)),

        // [paths]
        new("paths", "powercap_root", ConfigValueKind.String, "use an absolute path, e.g. \"/sys/class/powercap\"",
            c => Absolute(c.Paths.PowercapRoot)),
        new("paths", "msr_root", ConfigValueKind.String, "use an absolute path, e.g. \"/dev/cpu\"",
            c => Absolute(c.Paths.MsrRoot)),
        new("paths", "cpu_root", ConfigValueKind.String, "use an absolute path, e.g. \"/sys/devices/system/cpu\"",
            c => Absolute(c.Paths.CpuRoot)),
        new("paths", "cpuinfo", ConfigValueKind.String, "use an absolute file path, e.g. \"/proc/cpuinfo\"",
            c => Absolute(c.Paths.Cpuinfo)),
        new("paths", "perf_pmu_root", ConfigValueKind.String, "use an absolute path, e.g. \"/sys/bus/event_source/devices\"",
            c => Absolute(c.Paths.PerfPmuRoot)),
        new("paths", "cgroup_root", ConfigValueKind.String, "use an absolute path, e.g. \"/sys/fs/cgroup\"",
            c => Absolute(c.Paths.CgroupRoot)),
        new("paths", "procfs_root", ConfigValueKind.String, "use an absolute path, e.g. \"/proc\"",
            c => Absolute(c.Paths.ProcfsRoot)),
        new("paths", "state_dir", ConfigValueKind.String, "use an absolute path on a local disk, e.g. \"/var/lib/alumet-hpc/state\" (not /tmp)",
            c => Absolute(c.Paths.StateDir)),
        new("paths", "data_dir", ConfigValueKind.String, "use an absolute path, e.g. \"/var/lib/alumet-hpc/data\"",
            c => Absolute(c.Paths.DataDir)),
        new("paths", "database", ConfigValueKind.String, "use an absolute file path, e.g. \"/var/lib/alumet-hpc/accounting.db\"",
            c => Absolute(c.Paths.Database)),
        new("paths", "log_file", ConfigValueKind.String, "use an absolute file path, e.g. \"/var/log/alumet-hpc.log\"",
            c => Absolute(c.Paths.LogFile)),
        new("paths", "nvml_library", ConfigValueKind.String, "use a library name such as \"libnvidia-ml.so.1\" or an absolute path",
            c => LibraryName(c.Paths.NvmlLibrary)),

        // [cluster]
        new("cluster", "name", ConfigValueKind.String, "use letters, digits, '.', '_' or '-' (at most 64), or \"\" for SLURM_CLUSTER_NAME",
            c => ClusterName(c.Cluster.Name)),

        // [report]
        new("report", "admins", ConfigValueKind.StringList, "use an array of user names, e.g. [\"root\", \"alice\"]",
            c => UserNames(c.Report.Admins)),
        new("report", "admin_groups", ConfigValueKind.StringList, "use an array of group names, e.g. [\"hpcadmin\"]",
            c => UserNames(c.Report.AdminGroups)),

        // [bmc]
        new("bmc", "host", ConfigValueKind.String, "use \"\" (in-band, /dev/ipmi0) or the BMC's address, e.g. \"10.0.0.5\" or \"10.0.0.5:623\"",
            c => c.Bmc.Host.Length == 0 ? null : Label(c.Bmc.Host, 255) ?? (c.Bmc.Host.Contains(' ') ? $"{Quote(c.Bmc.Host)} contains a space" : null)),
        new("bmc", "user", ConfigValueKind.String, "use the BMC user name (at most 16 characters), or \"\" for the anonymous user",
            c => c.Bmc.User.Length == 0 ? null : Label(c.Bmc.User, 16)),
        new("bmc", "password_file", ConfigValueKind.String, "use \"\" or an absolute path to a root-only file holding the password",
            c => c.Bmc.PasswordFile.Length == 0 ? null : Absolute(c.Bmc.PasswordFile)),
        new("bmc", "interface", ConfigValueKind.String, "use \"auto\" (DCMI, else a Watts sensor), \"dcmi\" or \"sensor\"",
            c => OneOf(c.Bmc.Interface, "auto", "dcmi", "sensor")),
        new("bmc", "sensor", ConfigValueKind.String, "use \"\" (the first Watts sensor) or a sensor id string from `ipmi-sensors`",
            c => c.Bmc.Sensor.Length == 0 ? null : Label(c.Bmc.Sensor, 16)),
        new("bmc", "hz", ConfigValueKind.Number, "use 0.05..10 (BMCs refresh about once a second)",
            c => Range(c.Bmc.Hz, 0.05, 10)),
        new("bmc", "timeout_ms", ConfigValueKind.Integer, "use 100..10000 ms (a request to a BMC that does not answer is abandoned after this)",
            c => Range(c.Bmc.TimeoutMs, 100, 10_000)),
        new("bmc", "stale_after_s", ConfigValueKind.Number, "use 1..3600 s (a DCMI timestamp unchanged this long flags the readings)",
            c => Range(c.Bmc.StaleAfterS, 1, 3600)),
        new("bmc", "cipher_suite", ConfigValueKind.Integer, "use an IPMI 2.0 cipher suite id, 0..17 (3 is the common one)",
            c => Range(c.Bmc.CipherSuite, 0, 17)),
        new("bmc", "privilege", ConfigValueKind.String, "use \"user\", \"operator\" or \"admin\"",
            c => OneOf(c.Bmc.Privilege, "user", "operator", "admin")),
        new("bmc", "device", ConfigValueKind.String, "use an absolute path, e.g. \"/dev/ipmi0\"",
            c => Absolute(c.Bmc.Device)),
        new("bmc", "freeipmi_library", ConfigValueKind.String, "use a library name such as \"libfreeipmi.so.17\" or an absolute path",
            c => LibraryName(c.Bmc.FreeipmiLibrary)),

        // [calibration]
        new("calibration", "dir", ConfigValueKind.String, "use an absolute path to a root-owned directory, e.g. \"/etc/alumet-hpc/calibration\"",
            c => Absolute(c.Calibration.Dir)),
        // [uncertainty] (docs/uncertainty.md)
        new("uncertainty", "coverage_factor", ConfigValueKind.Number, "use 1..3 (2 gives about 95 % confidence)",
            c => Range(c.Uncertainty.CoverageFactor, 1, 3)),
        new("uncertainty", "rapl_rel", ConfigValueKind.Number, "use a fraction 0..1 (0.05 = 5 %)",
            c => Range(c.Uncertainty.RaplRel, 0, 1)),
        new("uncertainty", "nvml_energy_counter_rel", ConfigValueKind.Number, "use a fraction 0..1 (0.05 = 5 %)",
            c => Range(c.Uncertainty.NvmlEnergyCounterRel, 0, 1)),
        new("uncertainty", "nvml_power_rel", ConfigValueKind.Number, "use a fraction 0..1 (0.05 = 5 %)",
            c => Range(c.Uncertainty.NvmlPowerRel, 0, 1)),
        new("uncertainty", "nvml_power_coverage", ConfigValueKind.Number, "use a fraction of time above 0, at most 1 (0.25 on A100/H100)",
            c => Positive(c.Uncertainty.NvmlPowerCoverage, 1)),
        new("uncertainty", "estimate_rel", ConfigValueKind.Number, "use a fraction 0..2 (0.5 = 50 %)",
            c => Range(c.Uncertainty.EstimateRel, 0, 2)),
        new("uncertainty", "attribution_rel", ConfigValueKind.Number, "use a fraction 0..1 (0.2 = 20 %)",
            c => Range(c.Uncertainty.AttributionRel, 0, 1)),

        // [facility] (docs/carbon.md)
        new("facility", "pue", ConfigValueKind.Number, "use 0 (not configured) or a PUE from 1 to 5, e.g. 1.3",
            c => c.Facility.Pue == 0 ? null : Range(c.Facility.Pue, 1, 5)),
        // A constant and a file together: the file would be used and the constant silently ignored (Outputs/Carbon).
        new("facility", "pue_file", ConfigValueKind.String, "use \"\" or an absolute path to a CSV file (docs/carbon.md), and pue = 0 beside a file",
            c => OptionalAbsolute(c.Facility.PueFile)
                 ?? (c.Facility.PueFile.Length > 0 && c.Facility.Pue != 0 ? $"is set together with pue = {Num(c.Facility.Pue)}, which the file would silently override" : null)),
        new("facility", "pue_rel", ConfigValueKind.Number, "use a fraction 0..1 (0 = not given)",
            c => Range(c.Facility.PueRel, 0, 1)),

        // [carbon] (docs/carbon.md)
        new("carbon", "intensity_g_per_kwh", ConfigValueKind.Number, "use 0 (not configured) or gCO2e/kWh up to 2000, e.g. 56",
            c => Range(c.Carbon.IntensityGPerKwh, 0, 2000)),
        new("carbon", "intensity_file", ConfigValueKind.String, "use \"\" or an absolute path to a CSV file (docs/carbon.md), and intensity_g_per_kwh = 0 beside a file",
            c => OptionalAbsolute(c.Carbon.IntensityFile)
                 ?? (c.Carbon.IntensityFile.Length > 0 && c.Carbon.IntensityGPerKwh != 0 ? $"is set together with intensity_g_per_kwh = {Num(c.Carbon.IntensityGPerKwh)}, which the file would silently override" : null)),
        new("carbon", "intensity_column", ConfigValueKind.String, "use \"\" (the second column) or the header of the value column",
            c => c.Carbon.IntensityColumn.Length == 0 ? null : Label(c.Carbon.IntensityColumn, 200)),
        new("carbon", "intensity_rel", ConfigValueKind.Number, "use a fraction 0..1 (0 = not given)",
            c => Range(c.Carbon.IntensityRel, 0, 1)),

        // [database]
        new("database", "url", ConfigValueKind.String, "use \"\" (SQLite at paths.database) or \"postgresql://[user@]host[:port]/database\" (no password: use password_file)",
            c => c.Database.Url.Length == 0 ? null : Outputs.Accounting.DatabaseUrl.TryParse(c.Database.Url, c.Database.PasswordFile, out string? e) is null ? $"{Quote(c.Database.Url)} {e}" : null),
        new("database", "password_file", ConfigValueKind.String, "use \"\" or an absolute path to a file of mode 0600 holding the password",
            c => c.Database.PasswordFile.Length == 0 ? null : Absolute(c.Database.PasswordFile)),
        new("database", "report_url", ConfigValueKind.String, "use \"\" or \"postgresql://report_user@host[:port]/database\" (a read-only role; no password: use report_password_file)",
            c => c.Database.ReportUrl.Length == 0 ? null
                : c.Database.Url.Length == 0 ? $"{Quote(c.Database.ReportUrl)} is set while url is not: reports read where jobs are written"
                : Outputs.Accounting.DatabaseUrl.TryParse(c.Database.ReportUrl, c.Database.ReportPasswordFile, out string? e) is null ? $"{Quote(c.Database.ReportUrl)} {e}" : null),
        new("database", "report_password_file", ConfigValueKind.String, "use \"\" or an absolute path to a file root:alumet, mode 0640, holding the read-only role's password",
            c => c.Database.ReportPasswordFile.Length == 0 ? null : Absolute(c.Database.ReportPasswordFile)),
        new("database", "hook_wait_s", ConfigValueKind.Number, "use 0.1..60 s (a hook never waits on the database longer; the row waits in the outbox)",
            c => Range(c.Database.HookWaitS, 0.1, 60)),
        new("database", "retry_s", ConfigValueKind.Number, "use 0..86400 s (how long a sampler retries its queued row after the job)",
            c => Range(c.Database.RetryS, 0, 86_400)),
    ];

    /// <summary>Keys an older config file may still hold, and what replaced them.</summary>
    public static string? Replaced(string fullName) => fullName switch
    {
        "paths.sysfs_root" => "paths.powercap_root (e.g. \"/sys/class/powercap\") and paths.cgroup_root (e.g. \"/sys/fs/cgroup\")",
        _ => null,
    };

    public static bool IsSection(string name) => Array.IndexOf(Sections, name) >= 0;

    public static ConfigKey? Find(string section, string name)
    {
        foreach (var k in Keys)
            if (k.Section == section && k.Name == name) return k;
        return null;
    }

    /// <summary>A number as TOML writes it (nan, inf, -inf for the non-finite ones).</summary>
    public static string Num(double v) =>
        double.IsNaN(v) ? "nan"
        : double.IsPositiveInfinity(v) ? "inf"
        : double.IsNegativeInfinity(v) ? "-inf"
        : v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>A TOML-style quoted string, escaped so a message stays on one line.</summary>
    public static string Quote(string s)
    {
        var sb = new System.Text.StringBuilder(s.Length + 2).Append('"');
        foreach (var ch in s)
        {
            switch (ch)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (char.IsControl(ch)) sb.Append("\\u").Append(((int)ch).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(ch);
                    break;
            }
        }
        return sb.Append('"').ToString();
    }

    private static string? Range(double v, double lo, double hi) =>
        !double.IsFinite(v) ? $"{Num(v)} is not a finite number"
        : v < lo || v > hi ? $"{Num(v)} is out of range"
        : null;

    private static string? Positive(double v, double max) =>
        !double.IsFinite(v) ? $"{Num(v)} is not a finite number"
        : v <= 0 ? $"{Num(v)} must be greater than 0"
        : v > max ? $"{Num(v)} is implausibly large"
        : null;

    private static string? NonNegative(double v, double max) =>
        !double.IsFinite(v) ? $"{Num(v)} is not a finite number"
        : v < 0 ? $"{Num(v)} is negative"
        : v > max ? $"{Num(v)} is implausibly large"
        : null;

    private static string? OneOf(string v, params string[] allowed) =>
        Array.IndexOf(allowed, v) >= 0 ? null : $"{Quote(v)} is not an allowed value";

    private static string? Label(string v, int maxLength)
    {
        if (v.Length == 0) return "is empty";
        if (v.Length > maxLength) return $"is longer than {maxLength} characters";
        foreach (var ch in v)
            if (char.IsControl(ch)) return $"{Quote(v)} contains a control character";
        return null;
    }

    private static string? Absolute(string v)
    {
        if (v.Length == 0) return "is empty";
        if (v.Contains('\0')) return $"{Quote(v)} contains a NUL character";
        // Relative paths would depend on the cwd of whichever hook or daemon runs us.
        return v[0] == '/' ? null : $"{Quote(v)} is not an absolute path";
    }

    private static string? OptionalAbsolute(string v) => v.Length == 0 ? null : Absolute(v);

    private static string? LibraryName(string v)
    {
        if (v.Length == 0) return "is empty";
        if (v.Contains('\0')) return $"{Quote(v)} contains a NUL character";
        // dlopen resolves a bare name through the loader path, but a name with '/' relative to the cwd.
        return v[0] == '/' || !v.Contains('/') ? null : $"{Quote(v)} is a relative path";
    }

    private static string? ClusterName(string v)
    {
        if (v.Length > 64) return "is longer than 64 characters";
        foreach (var ch in v)
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '.' or '_' or '-'))
                return $"{Quote(v)} contains {Quote(ch.ToString())}";
        return null;
    }

    private static string? UserNames(List<string> names)
    {
        foreach (var n in names)
        {
            if (n.Length == 0) return "contains an empty user name";
            foreach (var ch in n)
                if (char.IsWhiteSpace(ch) || char.IsControl(ch) || ch == ':')
                    return $"{Quote(n)} is not a valid user name";
        }
        return null;
    }
}
