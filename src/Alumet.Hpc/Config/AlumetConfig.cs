namespace Alumet.Hpc.Config;

/// <summary>
/// The whole configuration (one TOML file, every key documented in examples/alumet.toml).
/// Defaults are embedded so that the tool runs with no file at all.
/// </summary>
public sealed class AlumetConfig
{
    public SamplerSection Sampler { get; set; } = new();
    public SourcesSection Sources { get; set; } = new();
    public EstimateSection Estimate { get; set; } = new();
    public PathsSection Paths { get; set; } = new();
    public ClusterSection Cluster { get; set; } = new();
    public ReportSection Report { get; set; } = new();
    public BmcSection Bmc { get; set; } = new();
    public CalibrationSection Calibration { get; set; } = new();
    public UncertaintySection Uncertainty { get; set; } = new();
    public FacilitySection Facility { get; set; } = new();
    public CarbonSection Carbon { get; set; } = new();
    public DatabaseSection Database { get; set; } = new();
}

public sealed class SamplerSection
{
    /// <summary>RAPL read rate, 1-1000 Hz. RAPL updates about every 1 ms: 1 kHz is the useful ceiling.</summary>
    public double RaplHz { get; set; } = 1000;
    /// <summary>Estimate source rate (reads /proc/stat), 1-1000 Hz.</summary>
    public double EstimateHz { get; set; } = 10;
    /// <summary>"fifo": the 1 kHz tick thread (only it) runs at SCHED_FIFO priority 1 when root; "normal": never.</summary>
    public string TickScheduling { get; set; } = "fifo";
    /// <summary>NVML poll rate, 1-100 Hz (the GPU counter refreshes every 20-100 ms).</summary>
    public double NvmlHz { get; set; } = 20;
    /// <summary>Stored resolution in ms: 0 stores every read (raw), else energy is aggregated over this period.</summary>
    public int StoragePeriodMs { get; set; } = 1000;
    /// <summary>
    /// Parquet energy columns. Every file has <c>energy_raw</c> INT64 (the counter's units, exact) + <c>joules_per_unit</c>;
    /// "joules" adds <c>energy_j</c> DOUBLE. Measured at raw 1 kHz (ParquetSizeTests): raw 1.8 bytes/row, joules 5.6
    /// (noisy doubles do not compress). examples/queries.sql gives J and W from the integers.
    /// </summary>
    public string ParquetValues { get; set; } = "raw";
    /// <summary>How often job shares are computed from cgroup CPU time, ms.</summary>
    public int AttributionPeriodMs { get; set; } = 1000;
    /// <summary>How often buffered samples reach the spool file, ms (a crash loses at most this much).</summary>
    public int FlushIntervalMs { get; set; } = 1000;
    /// <summary>Plausibility bound per domain (package, DRAM, one GPU), W: an interval long enough for a second counter wrap at
    /// this power is flagged; a delta needing more than this power (a reset) is rejected and flagged.</summary>
    public double MaxPowerW { get; set; } = 1000;
    /// <summary>"cgroup" (split shared-node energy by CPU time) or "exclusive" (charge the whole node to the job).</summary>
    public string Attribution { get; set; } = "cgroup";
    /// <summary>How long the sampler waits for the job cgroup to appear, s.</summary>
    public double CgroupWaitS { get; set; } = 30;
    /// <summary>A job cgroup gone for longer than this ends the sampler (no orphans), s.</summary>
    public double JobGoneGraceS { get; set; } = 30;
    /// <summary>Hard limit on a sampler's life, hours.</summary>
    public double MaxLifetimeH { get; set; } = 24 * 14;
    /// <summary>How long the epilog waits for the node sampler to finalize the job before finalizing it from the spool itself, s.</summary>
    public double StopTimeoutS { get; set; } = 20;
    /// <summary>How long the node sampler stays after its last job ended (a next job reuses it), s.</summary>
    public double LingerS { get; set; } = 30;
    /// <summary>"allow": a job may ask for raw storage itself (Slurm: <c>--comment=alumet:raw</c>); "deny": such requests are ignored.</summary>
    public string JobRaw { get; set; } = "allow";
    /// <summary>"failed": a job's state dir (spool, meta) is removed once its Parquet file and row are written, kept when
    /// finalization failed; "always": kept (debugging, benchmarks). Kept dirs are removed after <see cref="StateMaxAgeH"/>.</summary>
    public string KeepState { get; set; } = "failed";
    /// <summary>Age after which kept job state dirs and the finalized markers are removed (by later finalizations), hours.</summary>
    public double StateMaxAgeH { get; set; } = 168;
}

public sealed class SourcesSection
{
    /// <summary>"auto" (use when present), "on" (required), "off".</summary>
    public string Rapl { get; set; } = "auto";
    /// <summary>
    /// How RAPL is read: "auto" (the cheapest interface that has a package counter: perf, then msr, then powercap,
    /// as measured by make bench), "perf" (perf_events power PMU), "powercap" (sysfs energy_uj) or "msr" (/dev/cpu/N/msr).
    /// </summary>
    public string RaplInterface { get; set; } = "auto";
    /// <summary>
    /// Unit of the MSR DRAM counter: "auto" (2^-16 J on the Intel server models known to fix it, else the ESU of
    /// MSR_RAPL_POWER_UNIT), "fixed" (always 2^-16 J) or "esu" (always the ESU).
    /// </summary>
    public string MsrDramUnit { get; set; } = "auto";
    /// <summary>"auto" (only when no RAPL counter is found), "on", "off".</summary>
    public string Estimate { get; set; } = "auto";
    /// <summary>"auto" (use when the driver is present), "off".</summary>
    public string Nvml { get; set; } = "auto";
    /// <summary>Node wall power from the BMC: "auto" (when /dev/ipmi0 exists or [bmc] host is set), "on", "off".</summary>
    public string Bmc { get; set; } = "auto";
}

/// <summary>How to reach the node's BMC (IPMI) for its wall power.</summary>
public sealed class BmcSection
{
    /// <summary>"" = in-band through <see cref="Device"/>; else the BMC's LAN address, optionally host:port.</summary>
    public string Host { get; set; } = "";
    public string User { get; set; } = "";
    /// <summary>A root-only file holding the LAN password (never the password in this world-readable file).</summary>
    public string PasswordFile { get; set; } = "";
    /// <summary>"auto" (DCMI, else a Watts sensor), "dcmi", "sensor".</summary>
    public string Interface { get; set; } = "auto";
    /// <summary>Id string of the power sensor; "" = the first sensor whose unit is Watts.</summary>
    public string Sensor { get; set; } = "";
    public double Hz { get; set; } = 1;
    public int TimeoutMs { get; set; } = 1000;
    public double StaleAfterS { get; set; } = 5;
    public int CipherSuite { get; set; } = 3;
    public string Privilege { get; set; } = "user";
    public string Device { get; set; } = "/dev/ipmi0";
    public string FreeipmiLibrary { get; set; } = "libfreeipmi.so.17";
}

/// <summary>Where `alumet-hpc calibrate` stores each node's wall-power model.</summary>
public sealed class CalibrationSection
{
    public string Dir { get; set; } = "/etc/alumet-hpc/calibration";
}

public sealed class EstimateSection
{
    /// <summary>Name of the power model, reproduced in every estimated report line.</summary>
    public string Model { get; set; } = "generic-per-core";
    /// <summary>Power of one busy logical CPU, W.</summary>
    public double CoreActiveW { get; set; } = 10.0;
    /// <summary>Power of one idle logical CPU, W.</summary>
    public double CoreIdleW { get; set; } = 2.0;
}

public sealed class PathsSection
{
    /// <summary>The powercap class directory (RAPL zones). Tests and the labs point it at generated trees.</summary>
    public string PowercapRoot { get; set; } = "/sys/class/powercap";
    /// <summary>The msr driver's devices (<c>N/msr</c> per CPU).</summary>
    public string MsrRoot { get; set; } = "/dev/cpu";
    /// <summary>The CPU topology directory (<c>cpuN/topology</c>, <c>cpuN/online</c>).</summary>
    public string CpuRoot { get; set; } = "/sys/devices/system/cpu";
    /// <summary>CPU vendor, family and model for the MSR layout (Intel or AMD registers, fixed DRAM unit).</summary>
    public string Cpuinfo { get; set; } = "/proc/cpuinfo";
    /// <summary>The perf_events PMU directory (<c>power/type</c>, <c>power/events</c>, <c>power/cpumask</c>).</summary>
    public string PerfPmuRoot { get; set; } = "/sys/bus/event_source/devices";
    /// <summary>The cgroup filesystem root (v1: one directory per controller; v2: the unified tree).</summary>
    public string CgroupRoot { get; set; } = "/sys/fs/cgroup";
    public string ProcfsRoot { get; set; } = "/proc";
    /// <summary>Per-job state (pid, spool) — not /tmp: OAR deletes users' /tmp files.</summary>
    public string StateDir { get; set; } = "/var/lib/alumet-hpc/state";
    /// <summary>Where the per-job Parquet files go (shared filesystem on multi-node clusters).</summary>
    public string DataDir { get; set; } = "/var/lib/alumet-hpc/data";
    /// <summary>The accounting database (SQLite).</summary>
    public string Database { get; set; } = "/var/lib/alumet-hpc/accounting.db";
    public string LogFile { get; set; } = "/var/log/alumet-hpc.log";
    public string NvmlLibrary { get; set; } = "libnvidia-ml.so.1";
}

public sealed class ClusterSection
{
    /// <summary>Cluster name in the accounting DB; empty = SLURM_CLUSTER_NAME or "local".</summary>
    public string Name { get; set; } = "";
}

public sealed class ReportSection
{
    /// <summary>Users allowed to see every job (others see only their own).</summary>
    public List<string> Admins { get; set; } = new() { "root" };
    /// <summary>Groups whose members see every job. Read from the system config only, matched by gid.</summary>
    public List<string> AdminGroups { get; set; } = new();
}

/// <summary>
/// Accuracy of each interface and of the attribution model, as relative standard uncertainties (fractions).
/// The method and the sources of every default are in docs/uncertainty.md.
/// </summary>
public sealed class UncertaintySection
{
    /// <summary>Coverage factor k of the expanded uncertainty U = k × u (2: about 95 % for a normal distribution).</summary>
    public double CoverageFactor { get; set; } = 2.0;
    /// <summary>RAPL (powercap and the other RAPL interfaces): systematic relative standard uncertainty of a domain's energy.</summary>
    public double RaplRel { get; set; } = 0.05;
    /// <summary>NVML energy counter: systematic relative standard uncertainty.</summary>
    public double NvmlEnergyCounterRel { get; set; } = 0.05;
    /// <summary>NVML power readings integrated over time: systematic relative standard uncertainty of the sensor.</summary>
    public double NvmlPowerRel { get; set; } = 0.05;
    /// <summary>Fraction of wall time the NVML power sensor actually observes (about 0.25 on A100/H100).</summary>
    public double NvmlPowerCoverage { get; set; } = 0.25;
    /// <summary>The CPU-time estimate model: systematic relative standard uncertainty.</summary>
    public double EstimateRel { get; set; } = 0.5;
    /// <summary>The CPU-time split of shared CPU-side energy: relative standard uncertainty of the energy moved between consumers.</summary>
    public double AttributionRel { get; set; } = 0.2;
}

/// <summary>Facility overhead: PUE as a constant or an hourly (or any step) time series.</summary>
public sealed class FacilitySection
{
    /// <summary>Constant PUE (facility energy / IT energy), 1..5; 0 = not configured (no facility energy).</summary>
    public double Pue { get; set; } = 0;
    /// <summary>CSV time series of PUE (see docs/carbon.md); "" = none. Replaces <see cref="Pue"/> when set.</summary>
    public string PueFile { get; set; } = "";
    /// <summary>Relative standard uncertainty of the PUE values (0 = not given).</summary>
    public double PueRel { get; set; } = 0;
}

/// <summary>Carbon intensity of the electricity, gCO2e/kWh, as a constant or a time series exported from a grid operator.</summary>
public sealed class CarbonSection
{
    /// <summary>Constant carbon intensity, gCO2e/kWh; 0 = not configured (no CO2e).</summary>
    public double IntensityGPerKwh { get; set; } = 0;
    /// <summary>CSV time series of carbon intensity (see docs/carbon.md); "" = none. Replaces the constant when set.</summary>
    public string IntensityFile { get; set; } = "";
    /// <summary>Header of the value column in <see cref="IntensityFile"/>; "" = the second column.</summary>
    public string IntensityColumn { get; set; } = "";
    /// <summary>Relative standard uncertainty of the intensity values (0 = not given).</summary>
    public double IntensityRel { get; set; } = 0;
}

public sealed class DatabaseSection
{
    /// <summary>Empty: SQLite at [paths] database (one machine). "postgresql://[user@]host[:port]/db[?...]": a PostgreSQL
    /// server (clusters). Never a password here: this file is world-readable.</summary>
    public string Url { get; set; } = "";
    /// <summary>File holding the PostgreSQL password (first line); must not be readable by group or others.</summary>
    public string PasswordFile { get; set; } = "";
    /// <summary>Where alumet-report reads for users: a read-only role on the same server (or a replica), same URL form.
    /// Empty: users get no report from PostgreSQL (root's report uses <see cref="Url"/>).</summary>
    public string ReportUrl { get; set; } = "";
    /// <summary>File holding the read-only role's password: root-owned, group alumet, 0640 (only alumet-report reads it).</summary>
    public string ReportPasswordFile { get; set; } = "";
    /// <summary>How long a scheduler hook may spend on the database (queued rows included), s. Past it the row waits in
    /// the outbox: a hook never waits on a busy or unreachable database beyond this.</summary>
    public double HookWaitS { get; set; } = 2;
    /// <summary>How long a sampler keeps retrying its queued row in the background after the job, s.</summary>
    public double RetryS { get; set; } = 600;
}
