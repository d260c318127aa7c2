using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Schedulers.Oar;

/// <summary>Which OAR hook is running.</summary>
public enum OarHookKind
{
    /// <summary>PROLOGUE_EXEC_FILE: first node only, as user oar, argv <c>jobid user nodefile</c>.</summary>
    Prologue,
    /// <summary>EPILOGUE_EXEC_FILE: first node only, as user oar, argv <c>jobid user nodefile</c>.</summary>
    Epilogue,
    /// <summary>JOB_RESOURCE_MANAGER_FILE <c>init</c> (every node, after the job cgroup is created).</summary>
    ResourceManagerInit,
    /// <summary>JOB_RESOURCE_MANAGER_FILE <c>clean</c> (every node, before OAR kills the job cgroup).</summary>
    ResourceManagerClean,
}

/// <summary>
/// A validated hook invocation. <see cref="Node"/> is the OAR network_address of this node when known
/// (resource manager: TAKTUK_HOSTNAME; prologue/epilogue: resolved from the resources file later).
/// <see cref="JobName"/> is the job hash's <c>job_name</c> (resource manager only; "" otherwise).
/// <see cref="Raw"/>: the job's types ask for raw storage (<c>oarsub -t alumet=raw</c>; resource manager only).
/// </summary>
public sealed record OarHookRequest(
    OarHookKind Kind, string JobId, string User, string? NodeFile, string? ResourcesFile, string? Node, string JobName = "", bool Raw = false);

public sealed record OarHookParse(OarHookRequest? Request, string? Error);

/// <summary>Everything a sampler start needs, once the node and its GPUs are resolved.</summary>
public sealed record OarJob(JobIdentity Identity, IReadOnlyList<int> GpuDevices);
