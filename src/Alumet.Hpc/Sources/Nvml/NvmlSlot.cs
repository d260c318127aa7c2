using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Sampling;

namespace Alumet.Hpc.Sources.Nvml;

/// <summary>Wires the NVML source into the sampler: <c>SourceFactory.Create(cfg, NvmlSlot.Create)</c>.</summary>
public static class NvmlSlot
{
    /// <summary>
    /// The NVML source in a slot of its own thread at <c>Sampler.NvmlHz</c> (NVML serializes on a driver lock and must
    /// never delay the RAPL tick), or null on a node without a usable NVIDIA GPU. The quiet no-GPU cases log nothing;
    /// a found GPU set is logged once at info level.
    /// </summary>
    public static SourceSlot? Create(AlumetConfig cfg) => Create(cfg, out _);

    public static SourceSlot? Create(AlumetConfig cfg, out string status)
    {
        NvmlSource? source = NvmlSource.TryOpen(cfg, out status);
        if (source is null) return null;
        Log.Info(status);
        return new SourceSlot(source, cfg.Sampler.NvmlHz, ownThread: true, cfg.Sampler.MaxPowerW);
    }
}
