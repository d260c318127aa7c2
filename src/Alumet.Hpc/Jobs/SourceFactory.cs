using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Sampling;
using Alumet.Hpc.Sources.Bmc;
using Alumet.Hpc.Sources.Estimate;
using Alumet.Hpc.Sources.Nvml;
using Alumet.Hpc.Sources.Rapl;

namespace Alumet.Hpc.Jobs;

/// <summary>The sources this node can offer under the configuration, and the plain-words perimeter they cover.</summary>
public sealed record SourceSet(IReadOnlyList<SourceSlot> Slots, string Perimeter, string EstimateModel, IReadOnlyList<string> Problems) : IDisposable
{
    public bool Empty => Slots.Count == 0;

    /// <summary>The start-up comparison of the other RAPL interfaces present (null when none), not started yet.</summary>
    public RaplCrossCheck? CrossCheck { get; init; }

    /// <summary>
    /// Starts <see cref="CrossCheck"/> (its log lines after <see cref="SourceFactory.CrossCheckWindow"/>). The hosts call it
    /// after the first reads (<see cref="Sampler.Run"/>): reopening the interfaces and starting its thread cost the caller.
    /// </summary>
    public void StartCrossCheck() => CrossCheck?.Start(SourceFactory.CrossCheckWindow);

    /// <summary>
    /// Which channels of the measurement buffer are GPUs the scheduler allocated to the job ("0,2", UUIDs, bus ids),
    /// through <see cref="GpuAllocation.Owners"/>; unknown ones are logged.
    /// </summary>
    public bool[] JobGpuChannels(string? allocation, string jobId, IReadOnlyList<EnergyChannel> channels)
    {
        var owned = new bool[channels.Count];
        if (string.IsNullOrWhiteSpace(allocation)) return owned;
        if (Slots.Select(s => s.Source).OfType<NvmlSource>().FirstOrDefault() is not { } nvml)
        {
            Log.Warn($"job {jobId}: GPUs '{allocation}' allocated but no NVIDIA GPU is readable here: GPU energy not measured");
            return owned;
        }
        var owners = GpuAllocation.Parse(allocation).Owners(nvml.Devices, out var unmatched);
        if (unmatched.Count > 0) Log.Warn($"job {jobId}: allocated GPU(s) {string.Join(",", unmatched)} not found among NVML devices");
        for (int d = 0; d < owners.Length; d++)
        {
            if (owners[d] != GpuOwner.Job) continue;
            for (int c = 0; c < channels.Count; c++)
                if (channels[c].Resource.Kind == ResourceKind.Gpu && channels[c].Resource.Id == nvml.Devices[d].BusId) owned[c] = true;
        }
        return owned;
    }

    /// <summary>Closes every source once (the node daemon closes them before its exit's export, and again by <c>using</c>:
    /// a second close of a descriptor would close whatever reused its number).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        foreach (var s in Slots) s.Source.Dispose();
        CrossCheck?.DisposeUnstarted(); // a started one closes its own descriptors when done
    }

    private int _disposed;
}

public static class SourceFactory
{
    public const string NotCovered = "Not covered: NICs, disks, fans, PSU losses, other hardware.";

    /// <summary>How long the start-up RAPL cross-check compares the interfaces' energy (off the sampler's start path).</summary>
    public static readonly TimeSpan CrossCheckWindow = TimeSpan.FromMilliseconds(500);

    /// <summary>Builds the configured sources. Throws <see cref="MissingHardwareException"/> when a source set to "on" is unavailable.</summary>
    public static SourceSet Create(AlumetConfig cfg) => Create(cfg, NvmlSlot.Create);

    /// <param name="gpuSource">Builds the GPU source (NVML; tests pass a fake), or returns null when there is no GPU.</param>
    public static SourceSet Create(AlumetConfig cfg, Func<AlumetConfig, SourceSlot?>? gpuSource)
    {
        var slots = new List<SourceSlot>();
        var problems = new List<string>();
        var perimeter = new List<string>();
        string estimateModel = "";
        RaplCrossCheck? crossCheck = null;

        if (cfg.Sources.Rapl != "off")
        {
            var choice = RaplInterfaces.Choose(cfg);
            problems.AddRange(choice.Problems);
            if (choice.Source is { } rapl)
            {
                slots.Add(new SourceSlot(rapl, cfg.Sampler.RaplHz, ownThread: false, cfg.Sampler.MaxPowerW));
                perimeter.Add($"RAPL via {string.Join("/", rapl.Channels.Select(c => c.Interface.Wire()).Distinct())} at {cfg.Sampler.RaplHz:0.##} Hz: "
                    + string.Join(", ", rapl.Channels.Select(c => c.Resource.ToString()))
                    + " (package = cores + uncore of a socket; cores/uncore are inside the package and psys contains package + DRAM, so TotalEnergy = package + DRAM + GPU)");
                crossCheck = choice.CrossCheck;
            }
            else if (cfg.Sources.Rapl == "on")
            {
                throw new MissingHardwareException(
                    $"no RAPL counter ({choice.Describe}): {string.Join("; ", choice.Problems)}; set [sources] rapl = \"auto\" to fall back to the estimate");
            }
        }

        if (gpuSource?.Invoke(cfg) is { } gpu)
        {
            slots.Add(gpu);
            perimeter.Add(gpu.Source is NvmlSource nvml
                ? $"{nvml.Perimeter} at {gpu.Hz:0.##} Hz"
                : $"GPUs at {gpu.Hz:0.##} Hz: " + string.Join(", ", gpu.Source.Channels.Select(c => $"{c.Resource} ({c.Interface.Wire()})")));
        }

        // The CPU counts as measured when a RAPL package counter is read (a lone psys counter does not split per job).
        bool cpuMeasured = slots.Any(s => s.Source.Name == "rapl" && s.Source.Channels.Any(c => c.Resource.Kind == ResourceKind.CpuPackage));
        if (cfg.Sources.Estimate == "on" || (cfg.Sources.Estimate == "auto" && !cpuMeasured))
        {
            var model = new PowerModel(cfg.Estimate.Model, cfg.Estimate.CoreActiveW, cfg.Estimate.CoreIdleW);
            slots.Add(new SourceSlot(new EstimateSource(cfg.Paths.ProcfsRoot, model), cfg.Sampler.EstimateHz, ownThread: false, cfg.Sampler.MaxPowerW));
            estimateModel = model.Name;
            perimeter.Add($"ESTIMATED CPU energy (not a measurement): {model.Describe()} at {cfg.Sampler.EstimateHz:0.##} Hz");
        }

        // The BMC's whole-node wall power: read on its own thread (BmcSource); the slot only integrates what arrived,
        // so it rides the tick thread at the BMC's rate without ever waiting for the BMC. A separate domain, not in TotalEnergy.
        if (BmcSource.TryOpen(cfg, out string bmcStatus) is { } bmc)
        {
            slots.Add(new SourceSlot(bmc, cfg.Bmc.Hz, ownThread: false, BmcSource.MaxPlausibleW) { OwnBound = true });
            perimeter.Add(bmc.Perimeter);
        }
        else if (cfg.Sources.Bmc == "auto" && (cfg.Bmc.Host.Length > 0 || File.Exists(cfg.Bmc.Device)))
        {
            problems.Add(bmcStatus); // a BMC was configured or present but cannot give power: say why
        }

        perimeter.Add(NotCovered);
        return new SourceSet(slots, string.Join(" | ", perimeter), estimateModel, problems) { CrossCheck = crossCheck };
    }
}

/// <summary>Required hardware is absent or unreadable; the message says what and how to fix.</summary>
public sealed class MissingHardwareException(string message) : Exception(message);
