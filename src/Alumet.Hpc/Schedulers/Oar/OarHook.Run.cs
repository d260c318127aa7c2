using Alumet.Hpc.Config;
using Alumet.Hpc.Core;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Sources.Nvml;

namespace Alumet.Hpc.Schedulers.Oar;

public static partial class OarHook
{
    /// <summary>Largest resources file read (a job with 100 000 resources is ~30 MB; more is not a resources file).</summary>
    private const long MaxResourcesBytes = 64L << 20;

    /// <summary>
    /// <c>alumet-hpc oar prologue|epilogue|resource-manager ARGS</c>. Never throws, always returns 0 (a non-zero
    /// prologue puts the job in Error and the node in Suspected); problems go to the log as one line.
    /// </summary>
    /// <param name="kind">"prologue", "epilogue" or "resource-manager".</param>
    /// <param name="argv">The arguments after the kind (see <see cref="ParseRequest"/>).</param>
    /// <param name="configPath">The config file in use, handed to the sampler.</param>
    public static int Run(string kind, IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> env, AlumetConfig config, string? configPath,
        string? jobName = null, IReadOnlyList<string>? jobTypes = null)
    {
        try
        {
            OarHookParse parse = ParseRequest(kind, argv, env, jobName, jobTypes);
            if (parse.Request is not OarHookRequest req)
            {
                Log.Error(parse.Error ?? $"oar {kind}: invalid call");
                return 0;
            }
            string state = config.Paths.StateDir;
            OarHookPlan plan = OarHookPlan.For(req.Kind, OarStarterRecord.Read(state, req.JobId));
            string what = $"oar {kind}{(req.Kind is OarHookKind.ResourceManagerInit ? " init" : req.Kind is OarHookKind.ResourceManagerClean ? " clean" : "")} job {req.JobId}";
            if (plan.Action == OarHookAction.Nothing)
            {
                Log.Info($"{what}: {plan.Reason}");
                return 0;
            }

            string host = HostName();
            int uid = OarUsers.Uid(req.User);
            if (uid < 0)
            {
                Log.Error($"{what}: user {OarInput.Quote(req.User)} unknown to NSS (getpwnam); job not measured");
                return 0;
            }
            // Only a start needs the resources file (GPUs, node name); at clean time OAR may already have removed it.
            bool needResources = plan.Action == OarHookAction.Start || req.Node is null;
            OarJob job = ResolveJob(req, needResources ? ReadResources(req.ResourcesFile, what) : null, host, config.Cluster.Name, uid);
            if (!OarInput.IsNodeName(job.Identity.Node) || !OarInput.IsNodeName(job.Identity.Cluster))
            {
                Log.Error($"{what}: node {OarInput.Quote(job.Identity.Node)} / cluster {OarInput.Quote(job.Identity.Cluster)} is not a valid name");
                return 0;
            }

            if (plan.Action == OarHookAction.Start)
            {
                if (plan.Record is not null && !OarStarterRecord.Write(state, req.JobId, plan.Record))
                    Log.Warn($"{what}: cannot write {OarStarterRecord.PathFor(state, req.JobId)}; a prologue could start a second sampler");
                var result = SamplerLauncher.Start(new SamplerLaunch(job.Identity, configPath, GpuAllocation.FromOarGpuDevices(job.GpuDevices).Entries, null, Raw: req.Raw), config);
                string line = $"{what}: node {job.Identity.Node}, gpus [{string.Join(",", job.GpuDevices)}]: {result.Message}";
                if (result.Ok) Log.Info(line); else Log.Error(line);
            }
            else
            {
                var result = SamplerLauncher.StopAndFinalize(job.Identity, config);
                if (plan.DeleteRecord) OarStarterRecord.Delete(state, req.JobId);
                Log.Info($"{what}: node {job.Identity.Node}: {result.Status}: {result.Message}");
            }
        }
        catch (Exception e)
        {
            Log.Error($"oar {kind}: failed: {ErrorText.Describe(e)}"); // in our words (ErrorText), as HookHost says its own
        }
        return 0;
    }

    private static string? ReadResources(string? path, string what)
    {
        if (path is null) return null;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) { Log.Warn($"{what}: {path} does not exist: no GPU ownership, node name from the host name"); return null; }
            if (info.Length > MaxResourcesBytes) { Log.Warn($"{what}: {path} is larger than {MaxResourcesBytes} bytes, ignored"); return null; }
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Warn($"{what}: cannot read {path}: {e.Message}");
            return null;
        }
    }

    private static string HostName()
    {
        try
        {
            string h = File.ReadAllText("/proc/sys/kernel/hostname").Trim();
            if (OarInput.IsNodeName(h)) return h;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return OarInput.IsNodeName(Environment.MachineName) ? Environment.MachineName : "localhost";
    }
}
