namespace Alumet.Hpc.Sampling;

/// <summary>Why a sampler ended; decides whether its accounting row is complete or partial.</summary>
public enum StopReason
{
    /// <summary>SIGTERM/SIGINT from the epilog or the user: the normal end.</summary>
    Signal,
    /// <summary>The measured command exited (<c>exec</c>).</summary>
    CommandExited,
    /// <summary>The job cgroup disappeared and no epilog stopped the sampler within the grace period.</summary>
    JobGone,
    /// <summary>The job cgroup never appeared within the wait bound.</summary>
    CgroupNeverFound,
    /// <summary>The sampler reached its maximum lifetime.</summary>
    MaxLifetime,
}

public static class StopReasons
{
    public static bool IsComplete(this StopReason r) => r is StopReason.Signal or StopReason.CommandExited;
}
