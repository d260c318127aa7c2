namespace Alumet.Hpc.Schedulers.Oar;

public enum OarHookAction { Nothing, Start, Stop }

/// <summary>What one hook call does, given the starter recorded for the job on this node (see <see cref="OarStarterRecord"/>).</summary>
/// <param name="Record">Starter to record before starting (null = leave the record alone).</param>
/// <param name="DeleteRecord">Remove the record after stopping.</param>
/// <param name="Reason">Log line when the hook deliberately does nothing.</param>
public sealed record OarHookPlan(OarHookAction Action, string? Record, bool DeleteRecord, string? Reason)
{
    public static OarHookPlan For(OarHookKind kind, string? recorded) => kind switch
    {
        // Every node: the resource manager always owns the sampler it starts.
        OarHookKind.ResourceManagerInit => new(OarHookAction.Start, OarStarterRecord.ResourceManager, false, null),
        // Last call before OAR kill -9s the cpuset: stop whatever runs, whoever started it.
        OarHookKind.ResourceManagerClean => new(OarHookAction.Stop, null, true, null),
        OarHookKind.Prologue when recorded is not null =>
            new(OarHookAction.Nothing, null, false, $"sampler already started by the {recorded} hook on this node"),
        OarHookKind.Prologue => new(OarHookAction.Start, OarStarterRecord.Prologue, false, null),
        OarHookKind.Epilogue when recorded == OarStarterRecord.ResourceManager =>
            new(OarHookAction.Nothing, null, false, "sampler belongs to the resource-manager hook (stopped by its clean)"),
        // Prologue-started, or no record (record unwritable): stopping is harmless when nothing runs.
        OarHookKind.Epilogue => new(OarHookAction.Stop, null, true, null),
        _ => new(OarHookAction.Nothing, null, false, "unknown hook"),
    };
}
