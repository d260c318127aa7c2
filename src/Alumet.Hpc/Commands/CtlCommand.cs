using System.CommandLine;
using Alumet.Hpc.Config;
using Alumet.Hpc.Jobs;

namespace Alumet.Hpc.Commands;

/// <summary>
/// <c>alumet-hpc ctl status|jobs|pause|resume|set KEY=VALUE</c>: the running node sampler, over its socket (root
/// only, like the sampler), applied without restart.
/// </summary>
public static class CtlCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var request = new Argument<string[]>("request") { Description = "status | jobs | pause | resume | set KEY=VALUE", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("ctl", "Control the running node sampler: status, jobs, pause, resume, set KEY=VALUE (root only)") { config, request };
        cmd.SetAction(r => Run(r.GetValue(config), r.GetValue(request)!));
        return cmd;
    }

    private static int Run(string? configPath, string[] words)
    {
        string verb = words[0];
        if (verb is not ("status" or "jobs" or "pause" or "resume" or "set") || (verb == "set") != (words.Length == 2) || (verb != "set" && words.Length != 1))
        {
            Console.Error.WriteLine("alumet-hpc: ctl: use status, jobs, pause, resume or set KEY=VALUE");
            return 2;
        }
        if (CommonOptions.LoadSystem(configPath) is not { } cfg) return 2;
        if (RootOnly.Refuse("alumet-hpc: ctl", RootOnly.DeniedSocket(NodeSocket.PathFor(cfg.Paths.StateDir)),
                "the node sampler's socket is root's only; run ctl as root (sudo)"))
            return RootOnly.ExitCode;
        string? answer = NodeSocket.Request(cfg.Paths.StateDir, string.Join(' ', words), TimeSpan.FromSeconds(10), out string? error);
        if (answer is null)
        {
            Console.Error.WriteLine($"alumet-hpc: ctl: {error}{(error?.Contains("Permission denied", StringComparison.OrdinalIgnoreCase) == true ? "; run as root" : "")}");
            return 1;
        }
        if (answer.StartsWith("error ", StringComparison.Ordinal))
        {
            Console.Error.WriteLine($"alumet-hpc: ctl: {answer[6..].Trim()}");
            return 1;
        }
        string body = answer.StartsWith("ok\n", StringComparison.Ordinal) ? answer[3..] : answer.StartsWith("ok ", StringComparison.Ordinal) ? answer[3..] : answer;
        Console.Out.Write(body);
        return 0;
    }
}
