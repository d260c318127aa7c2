using Xunit;
using Alumet.Hpc.Schedulers.Oar;

namespace Alumet.Hpc.Tests.Schedulers.Oar;

public sealed class OarHookParseTests
{
    private static readonly Dictionary<string, string> NoEnv = new();

    /// <summary>The prologue environment observed on OAR 2.5.9 (subset that the hook reads).</summary>
    private static Dictionary<string, string> LabEnv(string job = "3") => new()
    {
        ["OAR_JOB_ID"] = job, ["OAR_JOBID"] = job, ["OAR_USER"] = "oarlabuser",
        ["OAR_NODEFILE"] = "/var/lib/oar/" + job, ["OAR_RESOURCE_PROPERTIES_FILE"] = $"/var/lib/oar/{job}_resources",
        ["OAR_CPUSET"] = "/oar/oarlabuser_" + job,
    };

    [Fact]
    public void Prologue_as_observed_in_the_lab()
    {
        var p = OarHook.ParseRequest("prologue", new[] { "3", "oarlabuser", "/var/lib/oar/3" }, LabEnv());
        Assert.Null(p.Error);
        Assert.Equal(new OarHookRequest(OarHookKind.Prologue, "3", "oarlabuser", "/var/lib/oar/3", "/var/lib/oar/3_resources", null), p.Request);
    }

    [Fact]
    public void Epilogue_without_env_derives_the_resources_file()
    {
        var p = OarHook.ParseRequest("epilogue", new[] { "17", "alice", "/var/lib/oar/17" }, NoEnv);
        Assert.Equal(new OarHookRequest(OarHookKind.Epilogue, "17", "alice", "/var/lib/oar/17", "/var/lib/oar/17_resources", null), p.Request);
    }

    [Fact]
    public void Resource_manager_init_and_clean()
    {
        var init = OarHook.ParseRequest("resource-manager", new[] { "init", "42", "bob", "n1.cluster", "/var/lib/oar/42_resources" }, NoEnv);
        Assert.Equal(new OarHookRequest(OarHookKind.ResourceManagerInit, "42", "bob", null, "/var/lib/oar/42_resources", "n1.cluster"), init.Request);
        var clean = OarHook.ParseRequest("resource-manager", new[] { "clean", "42", "bob", "n1", "/var/lib/oar/42_resources" }, NoEnv);
        Assert.Equal(OarHookKind.ResourceManagerClean, clean.Request!.Kind);
    }

    [Fact]
    public void Resource_manager_passes_the_job_name_as_one_safe_token()
    {
        // job_resource_manager_alumet.pl passes the job hash's job_name (oarsub -n, the user's text) as --job-name=...
        string[] argv = ["oar", "resource-manager", "--job-name=@/etc/shadow -c /tmp/x.toml", "init", "42", "bob", "n1", "/var/lib/oar/42_resources"];
        var parsed = Alumet.Hpc.Commands.AlumetCli.CreateRoot().Parse(argv);
        Assert.Empty(parsed.Errors);
        Assert.Equal("@/etc/shadow -c /tmp/x.toml", parsed.GetValue<string>("--job-name"));
        Assert.Null(parsed.GetValue<string>("--config"));
        Assert.Equal(5, parsed.GetValue<string[]>("args")!.Length);
        var init = OarHook.ParseRequest("resource-manager", ["init", "42", "bob", "n1", "/var/lib/oar/42_resources"], NoEnv, "@/etc/shadow -c /tmp/x.toml");
        Assert.Equal("@/etc/shadow -c /tmp/x.toml", init.Request!.JobName);
        var job = OarHook.ResolveJob(init.Request, null, "n1", "", 1001);
        Assert.Equal("@/etc/shadow -c /tmp/x.toml", job.Identity.JobName);
    }

    [Fact]
    public void The_job_type_alumet_raw_asks_for_raw_storage_at_init_only()
    {
        // job_resource_manager_alumet.pl passes each of the job hash's types as --job-type=... (oarsub -t alumet=raw).
        string[] argv = ["oar", "resource-manager", "--job-type=besteffort", "--job-type=alumet=raw", "init", "42", "bob", "n1", "/var/lib/oar/42_resources"];
        var parsed = Alumet.Hpc.Commands.AlumetCli.CreateRoot().Parse(argv);
        Assert.Empty(parsed.Errors);
        var types = parsed.GetValue<string[]>("--job-type")!;
        Assert.Equal(["besteffort", "alumet=raw"], types);
        Assert.Equal(5, parsed.GetValue<string[]>("args")!.Length);
        string[] rm = ["init", "42", "bob", "n1", "/var/lib/oar/42_resources"];
        Assert.True(OarHook.ParseRequest("resource-manager", rm, NoEnv, null, types).Request!.Raw);
        Assert.True(OarHook.ParseRequest("resource-manager", rm, NoEnv, null, ["ALUMET=RAW "]).Request!.Raw);
        Assert.False(OarHook.ParseRequest("resource-manager", rm, NoEnv, null, ["besteffort"]).Request!.Raw);
        Assert.False(OarHook.ParseRequest("resource-manager", rm, NoEnv, null, ["alumet=rawer", "alumet", "raw", "container=alumet=raw"]).Request!.Raw);
        Assert.False(OarHook.ParseRequest("resource-manager", rm, NoEnv).Request!.Raw);
        // clean ends the job whatever it asked; the prologue and epilogue get no types from OAR
        Assert.False(OarHook.ParseRequest("resource-manager", ["clean", "42", "bob", "n1", "/r"], NoEnv, null, types).Request!.Raw);
        Assert.False(OarHook.ParseRequest("prologue", ["3", "oarlabuser", "/var/lib/oar/3"], LabEnv(), null, types).Request!.Raw);
    }

    [Theory]
    [InlineData("prologue", new[] { "3", "oarlabuser" }, "oar prologue: expected 3 arguments (jobid user nodefile), got 2")]
    [InlineData("prologue", new[] { "3;rm -rf /", "u", "/var/lib/oar/3" }, "oar prologue: job id \"3;rm -rf /\" is not a job id (digits)")]
    [InlineData("prologue", new[] { "03", "u", "/var/lib/oar/3" }, "oar prologue: job id \"03\" is not a job id (digits)")]
    [InlineData("prologue", new[] { "", "u", "/var/lib/oar/3" }, "oar prologue: job id \"\" is not a job id (digits)")]
    [InlineData("epilogue", new[] { "3", "../root", "/var/lib/oar/3" }, "oar epilogue: user \"../root\" is not a user name")]
    [InlineData("epilogue", new[] { "3", "a b", "/var/lib/oar/3" }, "oar epilogue: user \"a b\" is not a user name")]
    [InlineData("epilogue", new[] { "3", "-x", "/var/lib/oar/3" }, "oar epilogue: user \"-x\" is not a user name")]
    [InlineData("epilogue", new[] { "3", "u", "var/lib/oar/3" }, "oar epilogue: node file \"var/lib/oar/3\" is not an absolute path")]
    [InlineData("epilogue", new[] { "3", "u", "/var/lib/oar/../../etc/shadow" }, "oar epilogue: node file \"/var/lib/oar/../../etc/shadow\" is not an absolute path")]
    [InlineData("epilogue", new[] { "3", "u", "/var/lib/oar/$(id)" }, "oar epilogue: node file \"/var/lib/oar/$(id)\" is not an absolute path")]
    [InlineData("resource-manager", new[] { "start", "42", "bob", "n1", "/r" }, "oar resource-manager: action \"start\" is neither init nor clean")]
    [InlineData("resource-manager", new[] { "init", "42", "bob", "n1" }, "oar resource-manager: expected 5 arguments (init|clean jobid user node resources_file), got 4")]
    [InlineData("resource-manager", new[] { "init", "42", "bob", "n1/x", "/r" }, "oar resource-manager: node \"n1/x\" is not a node name")]
    [InlineData("resource-manager", new[] { "init", "42", "bob", "n1", "r" }, "oar resource-manager: resources file \"r\" is not an absolute path")]
    [InlineData("resource-manager", new[] { "init", "x", "bob", "n1", "/r" }, "oar resource-manager: job id \"x\" is not a job id (digits)")]
    [InlineData("server-prologue", new[] { "1" }, "oar: unknown hook \"server-prologue\" (prologue, epilogue or resource-manager)")]
    public void Refuses_bad_argv_with_one_clear_line(string kind, string[] argv, string error)
    {
        var p = OarHook.ParseRequest(kind, argv, NoEnv);
        Assert.Null(p.Request);
        Assert.Equal(error, p.Error);
    }

    [Fact]
    public void Refuses_env_that_disagrees_with_argv()
    {
        var env = LabEnv("4");
        Assert.Equal("oar prologue: OAR_JOB_ID \"4\" differs from argv job id 3",
            OarHook.ParseRequest("prologue", new[] { "3", "oarlabuser", "/var/lib/oar/3" }, env).Error);
        env = LabEnv("3");
        env["OAR_USER"] = "mallory";
        Assert.Equal("oar prologue: OAR_USER \"mallory\" differs from argv user \"oarlabuser\"",
            OarHook.ParseRequest("prologue", new[] { "3", "oarlabuser", "/var/lib/oar/3" }, env).Error);
        env = LabEnv("3");
        env["OAR_RESOURCE_PROPERTIES_FILE"] = "/tmp/x\n";
        Assert.Equal("oar prologue: OAR_RESOURCE_PROPERTIES_FILE \"/tmp/x\\x0a\" is not an absolute path",
            OarHook.ParseRequest("prologue", new[] { "3", "oarlabuser", "/var/lib/oar/3" }, env).Error);
    }

    [Fact]
    public void Long_values_are_cut_in_the_log_line()
    {
        string id = new('9', 100);
        Assert.Equal($"oar prologue: job id \"{new string('9', 80)}...\" is not a job id (digits)",
            OarHook.ParseRequest("prologue", new[] { id, "u", "/n" }, NoEnv).Error);
    }

    [Fact]
    public void Resolve_single_node_lab_job()
    {
        var req = OarHook.ParseRequest("prologue", new[] { "3", "oarlabuser", "/var/lib/oar/3" }, LabEnv()).Request!;
        var job = OarHook.ResolveJob(req, OarResourcePropertiesTests.Lab259, "debian-host", "", 1000);
        Assert.Equal(new Alumet.Hpc.Jobs.JobIdentity("oar", "local", "3", "oarlabuser", 1000, "localhost"), job.Identity);
        Assert.Equal(new[] { 0, 1 }, job.GpuDevices);
    }

    [Theory]
    [InlineData("n2.cluster", "n2.cluster", new[] { 3 })]   // full host name
    [InlineData("n1", "n1.cluster", new[] { 0, 1 })]        // short host name vs FQDN address
    [InlineData("n9", "n9", new int[0])]                   // not among the job's nodes: the host name, no GPU
    public void Resolve_multi_node_prologue(string host, string node, int[] gpus)
    {
        var req = new OarHookRequest(OarHookKind.Prologue, "5", "alice", "/var/lib/oar/5", "/var/lib/oar/5_resources", null);
        var job = OarHook.ResolveJob(req, OarResourcePropertiesTests.TwoNodes, host, "grid", 1001);
        Assert.Equal(node, job.Identity.Node);
        Assert.Equal("grid", job.Identity.Cluster);
        Assert.Equal(gpus, job.GpuDevices);
    }

    [Fact]
    public void Resource_manager_node_wins_and_missing_file_means_no_gpu()
    {
        var req = new OarHookRequest(OarHookKind.ResourceManagerInit, "5", "alice", null, "/var/lib/oar/5_resources", "n2.cluster");
        Assert.Equal(new[] { 3 }, OarHook.ResolveJob(req, OarResourcePropertiesTests.TwoNodes, "n1", "", 1).GpuDevices);
        var none = OarHook.ResolveJob(req, null, "n1", "", 1);
        Assert.Equal("n2.cluster", none.Identity.Node);
        Assert.Empty(none.GpuDevices);
    }
}
