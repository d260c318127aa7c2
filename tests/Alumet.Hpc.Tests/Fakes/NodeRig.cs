using Alumet.Hpc.Attribution;
using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Sources.Nvml;
using Alumet.Hpc.Sources.Rapl;
using Alumet.Hpc.Tests.Fakes.Nvml;

namespace Alumet.Hpc.Tests.Fakes;

/// <summary>
/// A node sampler over generated counters (one socket: package, core, dram), /proc/stat and Slurm-style v1 job cgroups,
/// with an installation (state, data, database, log) under one temp dir: the tests drive its real entry points by hand.
/// </summary>
public sealed class NodeRig : IDisposable
{
    public PowercapTree Powercap { get; }
    public ProcTree Proc { get; } = new();
    public CgroupTree Cgroups { get; } = new();
    public TempTree Install { get; } = new("install");
    /// <summary>The RAPL slot of the last <see cref="NewNode"/> (read it by hand with <c>node.Buffer.Read</c>).</summary>
    public SourceSlot? Slot { get; private set; }
    /// <summary>The fake NVML of <see cref="NewNodeWithGpu"/>: its GPU's energy counter (mJ) is its file <c>e0</c>.</summary>
    public FakeNvml? Nvml { get; private set; }
    /// <summary>The GPU slot of <see cref="NewNodeWithGpu"/> (read it by hand with <c>node.Buffer.Read</c>, as its own thread does).</summary>
    public SourceSlot? Gpu { get; private set; }

    public NodeRig(ulong maxRange = 262_143_328_850) => Powercap = PowercapTree.Standard(1, maxRange);

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Powercap.Dispose(); Proc.Dispose(); Cgroups.Dispose(); Install.Dispose();
        Gpu?.Source.Dispose(); Nvml?.Dispose();
    }

    public AlumetConfig Config(int storageMs = 1000, double maxPowerW = 1000)
    {
        var c = new AlumetConfig();
        c.Paths.StateDir = Install.PathOf("state");
        c.Paths.DataDir = Install.PathOf("data");
        c.Paths.Database = Install.PathOf("accounting.db");
        c.Paths.LogFile = Install.PathOf("log");
        c.Paths.ProcfsRoot = Proc.Root;
        c.Paths.CgroupRoot = Cgroups.Root;
        c.Sampler.StoragePeriodMs = storageMs;
        c.Sampler.MaxPowerW = maxPowerW;
        return c;
    }

    /// <param name="finalization">Where ended jobs and closed days are written (default: in this process).</param>
    /// <param name="beforeCgroupLookup">Run by Register when it looks a job's cgroup up (between its checks and its answer).</param>
    /// <param name="wrapLocator">Wraps the jobs' cgroup locator (a test's view of the cgroup reads).</param>
    /// <param name="retryDayExports">As the node daemon: closed days not exported are exported again (NodeSampler.Housekeep).</param>
    /// <param name="ownThreadSlot">A second source, polled on a thread of its own (the daemon's NVML slot).</param>
    /// <param name="startMonotonicNs">The sampler's start (a test on the real clocks passes <c>Clock.MonotonicNs()</c>).</param>
    /// <param name="schedulerLocators">The jobs' cgroups where their scheduler puts them (the daemon's locators: Slurm's
    /// <c>cpuacct/slurm/uid_&lt;uid&gt;/job_&lt;id&gt;</c>, OAR's <c>cpuacct/oar/&lt;user&gt;_&lt;id&gt;</c>), not the test's view.</param>
    public NodeSampler NewNode(AlumetConfig cfg, IJobFinalization? finalization = null, Action? beforeCgroupLookup = null,
        Func<DirectoryJobLocator, IJobCgroupLocator>? wrapLocator = null, bool retryDayExports = false,
        SourceSlot? ownThreadSlot = null, long startMonotonicNs = 0, bool schedulerLocators = false)
    {
        var rapl = new RaplSource(PowercapDiscovery.Discover(Powercap.Root).Zones);
        Slot = new SourceSlot(rapl, 1000, ownThread: false, maxPowerW: cfg.Sampler.MaxPowerW);
        var sources = new SourceSet(ownThreadSlot is null ? new[] { Slot } : new[] { Slot, ownThreadSlot }, "test perimeter", "", []);
        string parent = Cgroups.PathOf("cpuacct", "slurm", "uid_1000");
        return new NodeSampler(cfg, sources, startMonotonicNs, finalization ?? new InProcessFinalization(cfg))
        {
            RetryDayExports = retryDayExports,
            Locators = schedulerLocators ? (reg, c) => Alumet.Hpc.Schedulers.SchedulerNames.Locator(c, reg.Job, reg.Sluid) : (_, _) =>
            {
                beforeCgroupLookup?.Invoke();
                var locator = new DirectoryJobLocator(parent, CgroupVersion.V1);
                return wrapLocator is null ? locator : wrapLocator(locator);
            },
        };
    }

    /// <summary>
    /// <see cref="NewNode"/> with the daemon's GPU slot beside RAPL (<c>NvmlSlot.Create</c>, polled on its own thread): one
    /// GPU, <c>gpu:0000:3b:00.0</c>, whose counter starts at 0 (<see cref="Nvml"/>, <see cref="Gpu"/>).
    /// </summary>
    public NodeSampler NewNodeWithGpu(AlumetConfig cfg)
    {
        Nvml = new FakeNvml("dev 0 bus_id 00000000:3B:00.0\ndev 0 energy file:e0\n");
        Nvml.Set("e0", 0);
        cfg.Paths.NvmlLibrary = Nvml.LibraryPath;
        Gpu = NvmlSlot.Create(cfg)!;
        return NewNode(cfg, ownThreadSlot: Gpu);
    }

    /// <summary>Counters, /proc/stat and the CPU time of <paramref name="jobs"/> at zero: where a test's node starts.</summary>
    public void AtZero(params string[] jobs)
    {
        SetCounters(0, 0, 0);
        Proc.SetStat(0, 0);
        foreach (string id in jobs) SetJobCpu(id, 0);
    }

    /// <summary>
    /// A node sampler at raw storage from zero counters, /proc/stat and job CPU, with job 42 registered at
    /// <paramref name="wall0"/>: the arrangement of the raw-storage spool tests.
    /// </summary>
    public NodeSampler RawNodeWithJob42(long wall0, out AlumetConfig cfg, bool exclusive = false, IJobFinalization? finalization = null, int flushIntervalMs = 1000)
    {
        cfg = Config(storageMs: 0);
        cfg.Sampler.FlushIntervalMs = flushIntervalMs;
        SetCounters(0, 0, 0);
        Proc.SetStat(0, 0);
        SetJobCpu("42", 0);
        var node = NewNode(cfg, finalization);
        node.Register(Job("42", exclusive), false, 0, wall0);
        return node;
    }

    /// <summary>A Slurm job of alice (uid 1000) on node1 of cluster test.</summary>
    public static JobRegistration Job(string id, bool exclusive = false, bool raw = false) =>
        new(new JobIdentity("slurm", "test", id, "alice", 1000, "node1"), null, null, exclusive, raw, 1);

    public void SetCounters(ulong package, ulong core, ulong dram)
    {
        Powercap.SetEnergy("intel-rapl:0", package);
        Powercap.SetEnergy("intel-rapl:0:0", core);
        Powercap.SetEnergy("intel-rapl:0:1", dram);
    }

    /// <summary>The job cgroup's CPU time (created when missing).</summary>
    public void SetJobCpu(string id, ulong ns) => Cgroups.SetV1Usage($"cpuacct/slurm/uid_1000/job_{id}", ns);
}
