using System.Diagnostics;
using Alumet.Hpc.Tests.Fakes;
using Xunit;

namespace Alumet.Hpc.Tests.Schedulers.Oar;

/// <summary>
/// The generated JOB_RESOURCE_MANAGER_FILE (oar/alumet-oar-make-resource-manager), run exactly as bipbip runs it on a
/// node (<c>TAKTUK_HOSTNAME=n perl - init|clean</c>, stdin = the script, "__END__", the Data::Dumper job hash), with a
/// recording inner script, oardodo and alumet-hpc. Needs perl (always there with OAR).
/// </summary>
public sealed class OarResourceManagerWrapperTests : IDisposable
{
    private readonly string _t = Directory.CreateTempSubdirectory("alumet-oar-rm-").FullName;
    private readonly string _generated;

    private const string JobHash =
        "{'job_id' => 42,'user' => 'alice','name' => 'alice_42','cpuset_path' => '/oar','oar_tmp_directory' => '/var/lib/oar','log_level' => 2}";

    public OarResourceManagerWrapperTests()
    {
        Write("inner.pl", """
            my $d = do { local $/; <STDIN> };
            open(my $s, '>>', "$ENV{T}/seq"); print $s "inner $ARGV[0]\n"; close($s);
            open(my $f, '>', "$ENV{T}/inner.$ARGV[0]"); print $f $d; close($f);
            exit($ENV{INNER_RC} // 0);
            """, exec: false);
        Write("oardodo", "#!/bin/sh\necho \"oardodo $*\" >> \"$T/oardodo.log\"\nexec \"$@\"\n");
        Write("alumet-hpc", "#!/bin/sh\nout=$(readlink /proc/$$/fd/1)\necho \"alumet $3\" >> \"$T/seq\"\n{ echo \"$*\"; echo \"config=$ALUMET_HPC_CONFIG\"; echo \"stdout=$out\"; } > \"$T/alumet.$3\"\n");
        _generated = Path.Combine(_t, "jrm.pl");
        var psi = new ProcessStartInfo(Path.Combine(RepoRoot(), "oar", "alumet-oar-make-resource-manager"))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (string a in new[] { Path.Combine(_t, "inner.pl"), _generated, Path.Combine(_t, "alumet-hpc"), "/etc/alumet-hpc/lab.toml" })
            psi.ArgumentList.Add(a);
        psi.Environment["OARDODO"] = Path.Combine(_t, "oardodo");
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err);
    }

    public void Dispose() => Directory.Delete(_t, recursive: true);

    private void Write(string name, string text, bool exec = true)
    {
        string path = Path.Combine(_t, name);
        if (exec) Executables.Write(path, text, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        else File.WriteAllText(path, text);
    }

    private int RunLikeBipbip(string action, int innerRc = 0, string jobHash = JobHash)
    {
        var psi = new ProcessStartInfo("perl") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-");
        psi.ArgumentList.Add(action);
        psi.Environment["TAKTUK_HOSTNAME"] = "node1.cluster";
        psi.Environment["T"] = _t;
        psi.Environment["INNER_RC"] = innerRc.ToString();
        psi.Environment.Remove("ALUMET_HPC_CONFIG");
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(File.ReadAllText(_generated) + "__END__\n" + jobHash);
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(30_000), "wrapper hung");
        Assert.Equal("", err.Result);
        return p.ExitCode;
    }

    private string Read(string name) => File.ReadAllText(Path.Combine(_t, name));

    [Fact]
    public void Init_runs_the_inner_script_with_the_same_input_then_starts_the_sampler()
    {
        Assert.Equal(0, RunLikeBipbip("init"));
        Assert.Equal(JobHash, Read("inner.init"));
        Assert.Equal("inner init\nalumet init\n", Read("seq"));
        Assert.Equal("oar resource-manager init 42 alice node1.cluster /var/lib/oar/42_resources\nconfig=/etc/alumet-hpc/lab.toml\nstdout=/dev/null\n", Read("alumet.init"));
        Assert.Equal($"oardodo {_t}/alumet-hpc oar resource-manager init 42 alice node1.cluster /var/lib/oar/42_resources\n", Read("oardodo.log"));
    }

    [Fact]
    public void Init_passes_the_job_types_as_bipbip_hands_them_one_argument_each()
    {
        // bipbip's job hash: types from OAR::IO::get_job_types_hash ("-t besteffort" -> "true", "-t alumet=raw" ->
        // alumet => "raw", "-t token:x=2" -> a nested hash, left out).
        const string hash = "{'job_id' => 43,'user' => 'alice','job_name' => 'run 1','types' => {'besteffort' => 'true','alumet' => 'raw','token' => {'x' => 2}},'oar_tmp_directory' => '/var/lib/oar'}";
        Assert.Equal(0, RunLikeBipbip("init", jobHash: hash));
        Assert.Equal($"oardodo {_t}/alumet-hpc oar resource-manager --job-name=run 1 --job-type=alumet=raw --job-type=besteffort init 43 alice node1.cluster /var/lib/oar/43_resources\n",
            Read("oardodo.log"));
    }

    [Fact]
    public void Failed_inner_init_keeps_its_exit_code_and_starts_nothing()
    {
        Assert.Equal(5, RunLikeBipbip("init", innerRc: 5));
        Assert.Equal("inner init\n", Read("seq"));
        Assert.False(File.Exists(Path.Combine(_t, "alumet.init")));
    }

    [Fact]
    public void Clean_stops_the_sampler_before_the_inner_clean_kills_the_cpuset()
    {
        Assert.Equal(3, RunLikeBipbip("clean", innerRc: 3));
        Assert.Equal("alumet clean\ninner clean\n", Read("seq"));
        Assert.Equal(JobHash, Read("inner.clean"));
        Assert.StartsWith("oar resource-manager clean 42 alice node1.cluster /var/lib/oar/42_resources\n", Read("alumet.clean"));
    }

    [Fact]
    public void Missing_alumet_binary_never_changes_the_outcome()
    {
        File.Delete(Path.Combine(_t, "alumet-hpc"));
        Assert.Equal(0, RunLikeBipbip("init"));
        Assert.Equal("inner init\n", Read("seq"));
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Alumet.Hpc.sln"))) return d.FullName;
        throw new InvalidOperationException("Alumet.Hpc.sln not found");
    }
}
