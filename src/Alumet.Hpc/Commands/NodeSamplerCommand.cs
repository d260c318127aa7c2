using System.CommandLine;
using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Commands;

/// <summary>
/// <c>alumet-hpc node-sampler</c>: the node's one sampler. Started detached by the first prolog that finds none
/// (<see cref="SamplerLauncher"/>), or kept permanent by systemd (<c>systemd/alumet-hpc-node.service</c>,
/// <c>linger_s</c> large); exits <c>linger_s</c> after its last job.
/// </summary>
public static class NodeSamplerCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var detach = new Option<bool>("--detach") { Description = "leave the caller's session, cgroups and stdio (used by hooks)" };
        var cmd = new Command("node-sampler", "Run the node's sampler: jobs register through prologs, end through epilogs; exits linger_s after its last job")
        {
            config, detach,
        };
        cmd.SetAction(r => Run(r.GetValue(config), r.GetValue(detach)));
        return cmd;
    }

    private static int Run(string? configPath, bool detach) => NodeSamplerHost.Main(configPath, detach);
}
