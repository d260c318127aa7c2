using Alumet.Hpc.Core;

namespace Alumet.Hpc.Sources.Estimate;

/// <summary>
/// For machines without energy counters: node CPU energy estimated from /proc/stat CPU time and a
/// <see cref="PowerModel"/>, exposed as a synthetic never-wrapping µJ counter so that it flows through the
/// same accumulation, attribution and outputs as RAPL — with interface <see cref="MeasurementInterface.Estimate"/>.
/// </summary>
public sealed class EstimateSource : IEnergySource
{
    private readonly ProcStat _stat;

    public PowerModel Model { get; }
    public string Name => "estimate";
    public IReadOnlyList<EnergyChannel> Channels { get; }

    public EstimateSource(string procfsRoot, PowerModel model)
    {
        _stat = new ProcStat(procfsRoot);
        Model = model;
        Channels = new[]
        {
            new EnergyChannel(new ResourceId(ResourceKind.CpuPackage, "all"), MeasurementInterface.Estimate, 1e-6, 0, $"estimate:{model.Name}"),
        };
    }

    public void Read(Span<ulong> raw, Span<bool> ok, long monotonicNs)
    {
        ok[0] = _stat.TryRead(out ulong busy, out ulong idle);
        raw[0] = ok[0] ? Model.EnergyMicrojoules(busy, idle) : 0;
    }

    public void Dispose() => _stat.Dispose();
}
