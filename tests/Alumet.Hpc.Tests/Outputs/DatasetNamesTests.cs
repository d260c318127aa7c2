using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Alumet.Hpc.Jobs;
using Alumet.Hpc.Outputs.Accounting;
using Alumet.Hpc.Outputs.Parquet;
using Alumet.Hpc.Tests.Commands;
using Alumet.Hpc.Tests.Fakes;
using Alumet.Hpc.Tests.Jobs;
using Alumet.Hpc.Tests.Spool;

namespace Alumet.Hpc.Tests.Outputs;

/// <summary>
/// Job file names in the 0711 dataset end in a tag keyed by the node's <c>&lt;state_dir&gt;/dataset.key</c>
/// (notes/s10/report.md item 8): a user who guesses a job's node and start can no longer <c>stat</c> its file and learn
/// its owner, end and size. The key is root's 0600, made once, never read through a link or from a file a user owns.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DatasetNamesTests
{
    private const string Fix = "remove it and the next finalization makes a new key";

    /// <summary>How a kept spool is retried (JobFinalizer.RetryExports), in the row and the log.</summary>
    private const string Retried = "exported again when a later job on this node ends";

    private static (int Code, string Out, string Err) Run(string file, params string[] args) => Report.TwoUsersInstallation.Run(file, args);

    private static TestInstallation Install()
    {
        var install = ExecBinaryTests.NewInstall("attribution = \"exclusive\"\nlinger_s = 0");
        File.SetUnixFileMode(install.Root, (UnixFileMode)0b111_101_101); // as /var/lib/alumet-hpc: others may traverse
        Directory.CreateDirectory(install.Config.Paths.StateDir);
        return install;
    }

    /// <summary>Root's <c>alumet-hpc exec</c> of a 0.3 s command through the published binary (a few 100 ms samples,
    /// so the row is complete unless the export fails): its stderr (the report).</summary>
    private static string Exec(TestInstallation install, string jobId)
    {
        var r = Run(TestInstallation.Binary(), "exec", "--config", install.ConfigPath, "--job-id", jobId, "--", "/bin/sleep", "0.3");
        Assert.True(r.Code == 0, r.Err);
        return r.Err;
    }

    private static string Tag(byte[] key, string message) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(message)))[..16];

    /// <summary>
    /// Fails on dd629f5: the ordinary user's <c>stat</c> of the old-style name finds the file (exit 0, owner printed).
    /// </summary>
    [SkippableFact]
    public void AnOrdinaryUserCannotFindAFinishedJobsFileByItsOldStyleName()
    {
        Skip.If(Environment.UserName != "root" || !File.Exists("/usr/sbin/runuser"), "needs root and runuser");
        using var install = Install();
        string first = ExecIds.Next(), next = ExecIds.Next();
        string report = Exec(install, first);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob(first));
        string month = Path.GetDirectoryName(row.ParquetPath)!; // the run's partition, data_dir/jobs/cluster=/year=/month=
        Assert.StartsWith(Path.Combine(install.Config.Paths.DataDir, "jobs", $"cluster={row.Cluster}", "year="), month);

        // What a user could guess from squeue (job, node, start to the ms): nothing is there.
        string guessed = Path.Combine(month, $"exec.{first}.{row.Node}.{row.RunId}.parquet");
        var probe = Run("/usr/sbin/runuser", "-u", "nobody", "--", "/usr/bin/stat", "-c", "%u", guessed);
        Assert.Equal((1, "", $"/usr/bin/stat: cannot statx '{guessed}': No such file or directory\n"), probe);

        // The file is there, under the keyed name, which the user can stat only knowing it (the directories are traversable).
        string keyFile = Path.Combine(install.Config.Paths.StateDir, DatasetKey.FileName);
        Assert.Equal((0, "0 600 32 regular file\n", ""), Run("/usr/bin/stat", "-c", "%u %a %s %F", keyFile));
        string tag = Tag(File.ReadAllBytes(keyFile), $"exec|{first}|{row.Node}|{row.RunId}");
        Assert.Equal(Path.Combine(month, $"exec.{first}.{row.Node}.{row.RunId}.{tag}.parquet"), row.ParquetPath);
        Assert.Equal((0, "0\n", ""), Run("/usr/sbin/runuser", "-u", "nobody", "--", "/usr/bin/stat", "-c", "%u", row.ParquetPath));
        Assert.Contains($"\nParquet: {row.ParquetPath}\n", report); // exec's own line names the same file

        // A second job reuses the key (made once).
        byte[] key = File.ReadAllBytes(keyFile);
        Exec(install, next);
        Assert.Equal(key, File.ReadAllBytes(keyFile));
        var second = Assert.Single(db.GetJob(next));
        Assert.EndsWith($".{Tag(key, $"exec|{next}|{second.Node}|{second.RunId}")}.parquet", second.ParquetPath);
    }

    /// <summary>
    /// The tag is HMAC-SHA256 computed in managed code (Core.HmacSha256): the process that names the file loads no
    /// OpenSSL, whose libssl and libcrypto cost the finalize-job child 4.7 MB of peak RSS for one tag per job
    /// (docs/performance-log.md, 2026-12-03); the name still ends in the BCL's HMAC-SHA256 tag. Through the published
    /// binary under glibc's LD_DEBUG=libs, which lists every library each process (exec and any child) initialises.
    /// Fails on 69c27c5: "calling init: /lib/x86_64-linux-gnu/libcrypto.so.3".
    /// </summary>
    [Fact]
    public void NamingAJobsFileLoadsNoOpenSsl()
    {
        using var install = Install();
        string id = ExecIds.Next();
        var r = Run("/usr/bin/env", "LD_DEBUG=libs", TestInstallation.Binary(), "exec", "--config", install.ConfigPath, "--job-id", id, "--no-report", "--", "/bin/sleep", "0.3");
        Assert.True(r.Code == 0, r.Err);
        var inits = r.Err.Split('\n').Where(l => l.Contains("calling init:", StringComparison.Ordinal)).ToList();
        Assert.Contains(inits, l => l.Contains("libc.so", StringComparison.Ordinal)); // LD_DEBUG did list the libraries
        Assert.Empty(inits.Where(l => l.Contains("libcrypto", StringComparison.Ordinal) || l.Contains("libssl", StringComparison.Ordinal)).Select(l => l.Trim()));
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob(id));
        byte[] key = File.ReadAllBytes(Path.Combine(install.Config.Paths.StateDir, DatasetKey.FileName));
        Assert.EndsWith($"/exec.{id}.{row.Node}.{row.RunId}.{Tag(key, $"exec|{id}|{row.Node}|{row.RunId}")}.parquet", row.ParquetPath);
        Assert.True(File.Exists(row.ParquetPath), row.ParquetPath);
    }

    /// <summary>
    /// An ordinary user's <c>exec</c> samples in its own process and keeps its state in its own state_dir: the key is
    /// made there, the user's own 0600 file (the user's data_dir is theirs alone anyway; the key keeps names
    /// deterministic). Fails on dd629f5: no key file (stat exits 1).
    /// </summary>
    [SkippableFact]
    public void AnOrdinaryUsersExecKeepsItsKeyInItsOwnStateDir()
    {
        Skip.If(Environment.UserName != "root" || !File.Exists("/usr/sbin/runuser"), "needs root and runuser");
        using var install = ExecBinaryTests.NewInstall();
        File.SetUnixFileMode(install.Root, (UnixFileMode)0b111_101_101);
        Assert.Equal(0, Run("/bin/chown", "-R", "65534:65534", install.Root).Code); // the user's own tree (their $XDG_DATA_HOME)
        var r = Report.TwoUsersInstallation.RunAs("nobody", TestInstallation.Binary(), "exec", "--config", install.ConfigPath, "--job-id", "744", "--no-report", "--", "/bin/sleep", "0.3");
        Assert.True(r.Code == 0, r.Err);
        string keyFile = Path.Combine(install.Config.Paths.StateDir, DatasetKey.FileName);
        Assert.Equal((0, "65534 600 32 regular file\n", ""), Run("/usr/bin/stat", "-c", "%u %a %s %F", keyFile));
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("744"));
        Assert.EndsWith($"/exec.744.{row.Node}.{row.RunId}.{Tag(File.ReadAllBytes(keyFile), $"exec|744|{row.Node}|{row.RunId}")}.parquet", row.ParquetPath);
        Assert.True(File.Exists(row.ParquetPath), row.ParquetPath);
    }

    /// <summary>
    /// README "Who sees what" and "Parquet dataset", through the published hooks: a Slurm job of nobody gets its file
    /// owned by nobody, mode 0400, in directories 0711 (jobs/cluster=/year=/month=); the day's node file, exported when
    /// the sampler exits, is root's 0400 in directories 0700 (node/ and node/&lt;node&gt;/).
    /// </summary>
    [SkippableFact]
    public void AJobsFileIsItsUsers0400In0711DirectoriesAndTheNodeFileRoots0400In0700()
    {
        Skip.If(Environment.UserName != "root", "needs root");
        using var install = Install();
        (string, string)[] nobody = [("SLURM_JOB_USER", "nobody"), ("SLURM_JOB_UID", "65534"), ("SLURM_JOB_GID", "65534")];
        foreach (var context in new[] { "prolog_slurmd", "epilog_slurmd" })
        {
            using var hook = install.StartSlurmHook(context, "744", nobody);
            Assert.True(hook.WaitForExit(60_000));
            Assert.Equal(0, hook.ExitCode);
            Thread.Sleep(context == "prolog_slurmd" ? 500 : 0);
        }
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob("744"));
        Assert.Equal(JobStatus.Complete, row.Status);
        string Stat(string path) => Run("/usr/bin/stat", "-c", "%U %a", path).Out;
        Assert.Equal("nobody 400\n", Stat(row.ParquetPath));
        string jobs = Path.Combine(install.Config.Paths.DataDir, "jobs");
        for (string d = Path.GetDirectoryName(row.ParquetPath)!; d.Length >= jobs.Length; d = Path.GetDirectoryName(d)!)
            Assert.Equal($"{d}: root 711\n", $"{d}: {Stat(d)}");

        string nodeFile = Alumet.Hpc.Spool.NodeSpool.ParquetPath(install.Config, "test", "node1", DateTime.UtcNow.ToString("yyyy-MM-dd"));
        for (int i = 0; i < 400 && !File.Exists(nodeFile); i++) Thread.Sleep(50); // linger_s = 0: the sampler exits and exports the day
        Assert.Equal("root 400\n", Stat(nodeFile));
        Assert.Equal("root 700\n", Stat(Path.GetDirectoryName(nodeFile)!));
        Assert.Equal("root 700\n", Stat(Path.GetDirectoryName(Path.GetDirectoryName(nodeFile)!)!));
    }

    /// <summary>
    /// Fails on dd629f5: the second finalization's name has no keyed tag (the regular expression does not match).
    /// </summary>
    [Fact]
    public void FinalizingARunAgainWritesTheSameKeyedFileOnce()
    {
        var (dir, cfg) = JobFinalizerTests.RawJob("raw");
        using var _ = dir;
        cfg.Sampler.KeepState = "always";
        string state = dir.PathOf("state", "exec", "7");
        var first = JobFinalizer.Finalize(state, cfg, complete: true, "");
        File.Delete(Path.Combine(state, SamplerFiles.Finalized)); // a finalizer killed before its marker: the next one does it all again
        var second = JobFinalizer.Finalize(state, cfg, complete: true, "");
        string run = second.Record!.RunId;
        Assert.Matches($@"^exec\.7\.n1\.{run}\.[0-9a-f]{{16}}\.parquet$", Path.GetFileName(second.ParquetPath));
        Assert.Equal(first.ParquetPath, second.ParquetPath);
        byte[] key = File.ReadAllBytes(dir.PathOf("state", DatasetKey.FileName));
        Assert.Equal($"exec.7.n1.{run}.{Tag(key, $"exec|7|n1|{run}")}.parquet", Path.GetFileName(second.ParquetPath));
        Assert.Equal(second.ParquetPath, Assert.Single(Directory.GetFiles(Path.GetDirectoryName(second.ParquetPath)!)));
    }

    /// <summary>
    /// Root never reads a key through a link nor from a file a user owns (a user who planted either would know every
    /// name): the finalization refuses it in one sentence, writes no file, keeps the spool and says why in the row.
    /// Fails on dd629f5: the row is complete and names a file (no key is read at all).
    /// </summary>
    [SkippableTheory]
    [InlineData("link")]
    [InlineData("user")]
    public void APlantedKeyIsRefusedWithOneSentenceAndNoFileIsWritten(string planted)
    {
        Skip.If(Environment.UserName != "root", "needs root");
        using var install = Install();
        string keyFile = Path.Combine(install.Config.Paths.StateDir, DatasetKey.FileName);
        byte[] known = [.. Enumerable.Repeat((byte)7, DatasetKey.Length)];
        string sentence;
        if (planted == "link")
        {
            sentence = PlantLink(install, known);
        }
        else
        {
            File.WriteAllBytes(keyFile, known);
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            Assert.Equal(0, Alumet.Hpc.Native.Libc.chown(keyFile, 65534, 65534));
            sentence = $"the dataset key {keyFile} is owned by uid 65534, not 0: {Fix}";
        }

        string id = ExecIds.Next();
        string report = Exec(install, id);
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        var row = Assert.Single(db.GetJob(id));
        string spool = Path.Combine(install.Config.Paths.StateDir, "exec", id);
        Assert.Equal((JobStatus.Partial, $"Parquet export failed ({sentence}); spool kept in {spool}, {Retried}", ""), (row.Status, row.Reason, row.ParquetPath));
        Assert.Contains($"job {id}: Parquet export failed: {sentence}; the spool stays in {spool} and is {Retried}", File.ReadAllText(install.Config.Paths.LogFile));
        Assert.DoesNotContain("Parquet: ", report);
        Assert.False(Directory.Exists(Path.Combine(install.Config.Paths.DataDir, "jobs")), "no job file was written");
        Assert.True(File.Exists(Path.Combine(spool, Alumet.Hpc.Spool.SpoolWriter.MetaFile)), "the spool is kept");
        // The planted thing is left as it was: neither followed, replaced nor removed.
        Assert.Equal(planted == "link" ? install.PathOf("known.key") : null, new FileInfo(keyFile).LinkTarget);
        Assert.Equal(known, File.ReadAllBytes(keyFile));
    }

    /// <summary>A symbolic link at the key's path to a key the planter knows; returns the refusal's sentence.</summary>
    private static string PlantLink(TestInstallation install, byte[] known)
    {
        string keyFile = Path.Combine(install.Config.Paths.StateDir, DatasetKey.FileName);
        File.WriteAllBytes(install.PathOf("known.key"), known);
        File.CreateSymbolicLink(keyFile, install.PathOf("known.key"));
        return $"the dataset key {keyFile} is a symbolic link, which is never followed: {Fix}";
    }

    /// <summary>
    /// Data is retried until stored: a spool kept for a refused key is exported once the admin has removed the key, at the
    /// next job's end on the node (the node sampler's retry in a finalize-job child); its row becomes complete, its file
    /// is named by the new key, its spool goes as after any finalization, and each of the two events is said once.
    /// Fails on 26325a9: the row stays partial (its <c>finalized</c> line says done: nothing ever exports the spool).
    /// </summary>
    [SkippableFact]
    public void AKeptSpoolIsExportedWhenALaterJobEndsOnceTheKeyIsFixed()
    {
        Skip.If(Environment.UserName != "root", "needs root");
        using var install = Install();
        string keyFile = Path.Combine(install.Config.Paths.StateDir, DatasetKey.FileName);
        string sentence = PlantLink(install, [.. Enumerable.Repeat((byte)7, DatasetKey.Length)]);
        string kept = ExecIds.Next(), later = ExecIds.Next();
        string spool = Path.Combine(install.Config.Paths.StateDir, "exec", kept);
        Exec(install, kept);
        Assert.Equal(JobStatus.Partial, RowOf(install, kept).Status);

        File.Delete(keyFile); // the admin's fix, as the sentence says
        Exec(install, later); // a later job's end on the node
        var end = DateTime.UtcNow.AddSeconds(30);
        var row = RowOf(install, kept);
        while ((row.Status != JobStatus.Complete || Directory.Exists(spool)) && DateTime.UtcNow < end) // the row, then the spool's removal
        {
            Thread.Sleep(50);
            row = RowOf(install, kept);
        }
        byte[] key = File.ReadAllBytes(keyFile);
        string month = Path.GetDirectoryName(RowOf(install, later).ParquetPath)!;
        Assert.Equal((JobStatus.Complete, "", Path.Combine(month, $"exec.{kept}.{row.Node}.{row.RunId}.{Tag(key, $"exec|{kept}|{row.Node}|{row.RunId}")}.parquet")),
            (row.Status, row.Reason, row.ParquetPath));
        Assert.True(File.Exists(row.ParquetPath), row.ParquetPath);
        Assert.False(Directory.Exists(spool), "the spool goes once exported");
        Assert.Equal($"complete\nrun={row.RunId}\n", File.ReadAllText(JobFinalizer.MarkerPath(spool)));
        Assert.False(File.Exists(Path.Combine(install.Config.Paths.StateDir, "exports-pending")), "nothing left to retry");
        string[] log = File.ReadAllLines(install.Config.Paths.LogFile);
        Assert.Single(log, l => l.Contains($"job {kept}: Parquet export failed: {sentence}; the spool stays in {spool} and is {Retried}", StringComparison.Ordinal));
        Assert.Single(log, l => l.Contains($" info: job {kept}: Parquet export retried: {row.ParquetPath}; row complete; row stored in {install.Config.Paths.Database}", StringComparison.Ordinal));
    }

    /// <summary>
    /// A reused job id (a Slurm requeue) never replaces an earlier run: the first run's spool, kept because its export
    /// failed, is moved aside when the id registers again, and the retry at a later job's end exports both runs, each
    /// to its own file and row. Fails on 010f4bf: the second registration deleted the first run's spool (its row stays partial).
    /// </summary>
    [SkippableFact]
    public void ARequeuedJobIdKeepsTheEarlierRunsSpoolWhoseExportFailed()
    {
        Skip.If(Environment.UserName != "root", "needs root");
        using var install = Install();
        string keyFile = Path.Combine(install.Config.Paths.StateDir, DatasetKey.FileName);
        PlantLink(install, [.. Enumerable.Repeat((byte)7, DatasetKey.Length)]);
        string jobs = Path.Combine(install.Config.Paths.StateDir, "exec");
        string requeued = ExecIds.Next(), later = ExecIds.Next();
        Exec(install, requeued);
        string firstRun = Assert.Single(RunsOf(install, requeued)).RunId;
        Exec(install, requeued); // the same id again: a requeue
        var runs = RunsOf(install, requeued);
        Assert.Equal([(firstRun, JobStatus.Partial), (runs[1].RunId, JobStatus.Partial)], runs.Select(r => (r.RunId, r.Status)));

        File.Delete(keyFile); // the admin's fix
        Exec(install, later); // a later job's end on the node
        var end = DateTime.UtcNow.AddSeconds(30);
        while ((RunsOf(install, requeued).Any(r => r.Status != JobStatus.Complete) || Directory.GetDirectories(jobs).Length > 0) && DateTime.UtcNow < end)
            Thread.Sleep(50);
        byte[] key = File.ReadAllBytes(keyFile);
        string month = Path.GetDirectoryName(RowOf(install, later).ParquetPath)!;
        runs = RunsOf(install, requeued);
        Assert.Equal(2, runs.Count);
        Assert.Equal(firstRun, runs[0].RunId);
        foreach (var row in runs)
        {
            Assert.Equal((JobStatus.Complete, "", Path.Combine(month, $"exec.{requeued}.{row.Node}.{row.RunId}.{Tag(key, $"exec|{requeued}|{row.Node}|{row.RunId}")}.parquet")),
                (row.Status, row.Reason, row.ParquetPath));
            Assert.True(File.Exists(row.ParquetPath), row.ParquetPath);
        }
        Assert.Empty(Directory.GetDirectories(jobs));
        Assert.Equal([$"{requeued}.finalized", $"{requeued}.run-{firstRun}.finalized", $"{later}.finalized"], Directory.GetFiles(jobs).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        string[] log = File.ReadAllLines(install.Config.Paths.LogFile);
        Assert.Equal(2, log.Count(l => l.Contains($" info: job {requeued}: Parquet export retried: ", StringComparison.Ordinal)));
    }

    /// <summary>
    /// A full data_dir (a real one: a small tmpfs) fails every export the same way: the failure is said once, not again
    /// by each retry at a later job's end, and once there is room the kept spools are exported, said once each. Fails on
    /// 0180333: the failure named the export's temporary file (pid and random in its name), so each retry read as a new
    /// failure: logged again (and the row rewritten) at every later job's end on the node.
    /// </summary>
    [SkippableFact]
    public void AFullDataDirIsSaidOnceNotAtEveryRetryAndTheKeptSpoolsAreExportedOnceThereIsRoom()
    {
        Skip.If(Environment.UserName != "root", "needs root to mount a small tmpfs (a real full filesystem)");
        using var install = Install();
        string data = Directory.CreateDirectory(install.Config.Paths.DataDir).FullName;
        Assert.Equal(0, SpoolWriterFullDiskTests.Run("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", data));
        try
        {
            string first = ExecIds.Next(), full1 = ExecIds.Next(), full2 = ExecIds.Next(), last = ExecIds.Next();
            Exec(install, first); // with room: the dataset's directories are made
            FinalizationTests.WaitForTheSamplersExit(install); // and the node's file, at the sampler's exit
            string filler = SpoolWriterFullDiskTests.Fill(data);
            Exec(install, full1);
            Exec(install, full2); // its end retries full1's export
            FinalizationTests.WaitForTheSamplersExit(install); // after its retries
            string[] log = File.ReadAllLines(install.Config.Paths.LogFile);
            foreach (string job in new[] { full1, full2 })
            {
                var failed = log.Where(l => l.Contains($"job {job}: Parquet export to ", StringComparison.Ordinal)).ToList();
                Assert.Single(failed);
                Assert.Contains($" failed: No space left on device : '{Path.GetDirectoryName(RowOf(install, first).ParquetPath)}/exec.{job}.", failed[0]);
            }
            Assert.DoesNotContain(log, l => l.Contains(".tmp'", StringComparison.Ordinal));

            File.Delete(filler); // room again
            Exec(install, last); // its end exports both kept spools
            var end = DateTime.UtcNow.AddSeconds(30);
            // Each retry writes its row, then says so: both waited for.
            while ((RowOf(install, full1).Status != JobStatus.Complete || RowOf(install, full2).Status != JobStatus.Complete
                    || File.ReadAllLines(install.Config.Paths.LogFile).Count(l => (l.Contains($" info: job {full1}:", StringComparison.Ordinal) || l.Contains($" info: job {full2}:", StringComparison.Ordinal)) && l.Contains(": Parquet export retried: ", StringComparison.Ordinal)) < 2)
                   && DateTime.UtcNow < end)
                Thread.Sleep(50);
            log = File.ReadAllLines(install.Config.Paths.LogFile);
            foreach (string job in new[] { full1, full2 })
            {
                var row = RowOf(install, job);
                Assert.Equal((JobStatus.Complete, ""), (row.Status, row.Reason));
                Assert.True(File.Exists(row.ParquetPath), row.ParquetPath);
                Assert.Single(log, l => l.Contains($" info: job {job}: Parquet export retried: {row.ParquetPath}; row complete", StringComparison.Ordinal));
                Assert.Single(log, l => l.Contains($"job {job}: Parquet export to ", StringComparison.Ordinal));
            }
        }
        finally
        {
            SpoolWriterFullDiskTests.Run("umount", "-l", data);
        }
    }

    private static List<JobRecord> RunsOf(TestInstallation install, string jobId)
    {
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        return [.. db.GetJob(jobId, runs: RunSelection.All).OrderBy(r => r.RunId, StringComparer.Ordinal)];
    }

    private static JobRecord RowOf(TestInstallation install, string jobId)
    {
        using var db = AccountingDb.OpenReadOnly(install.Config.Paths.Database);
        return Assert.Single(db.GetJob(jobId));
    }

    /// <summary>Every other thing at the key's path is refused with its own sentence, before a byte of it is used.</summary>
    [SkippableTheory]
    [InlineData("fifo")]
    [InlineData("directory")]
    [InlineData("open")]
    [InlineData("short")]
    [InlineData("long")]
    public void AKeyThatIsNotARegular0600FileOf32BytesIsRefused(string what)
    {
        Skip.If(Environment.UserName != "root", "needs root");
        using var tmp = new TempDir();
        string keyFile = Path.Combine(tmp.Path, DatasetKey.FileName);
        string expected;
        switch (what)
        {
            case "fifo":
                using (var mkfifo = Process.Start("mkfifo", keyFile)) mkfifo.WaitForExit();
                expected = $"the dataset key {keyFile} is not a regular file: {Fix}";
                break;
            case "directory":
                Directory.CreateDirectory(keyFile);
                expected = $"the dataset key {keyFile} is not a regular file: {Fix}";
                break;
            case "open":
                File.WriteAllBytes(keyFile, new byte[32]);
                File.SetUnixFileMode(keyFile, (UnixFileMode)0b110_100_100);
                expected = $"the dataset key {keyFile} is open to other users (mode 644, not 600): {Fix}";
                break;
            case "short":
                File.WriteAllBytes(keyFile, new byte[16]);
                File.SetUnixFileMode(keyFile, (UnixFileMode)0b110_000_000);
                expected = $"the dataset key {keyFile} holds 16 bytes, not 32: {Fix}";
                break;
            default:
                File.WriteAllBytes(keyFile, new byte[64]);
                File.SetUnixFileMode(keyFile, (UnixFileMode)0b110_000_000);
                expected = $"the dataset key {keyFile} holds more than 32 bytes, not 32: {Fix}";
                break;
        }
        Assert.Equal(expected, Assert.Throws<IOException>(() => DatasetKey.Load(tmp.Path)).Message);
    }

    /// <summary>
    /// Finalizers racing to make the key (two jobs ending at once on a fresh node) all get the one key that ends on disk,
    /// and leave no temporary file: the key is linked into place, never renamed over another.
    /// </summary>
    [Fact]
    public void FinalizersRacingToMakeTheKeyEndWithOne()
    {
        using var tmp = new TempDir();
        const int Racers = 8;
        for (int round = 0; round < 25; round++)
        {
            string dir = Path.Combine(tmp.Path, round.ToString());
            Directory.CreateDirectory(dir);
            var keys = new byte[Racers][];
            using var start = new Barrier(Racers);
            var threads = Enumerable.Range(0, Racers).Select(i => new Thread(() => { start.SignalAndWait(); keys[i] = DatasetKey.Load(dir); })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            byte[] onDisk = File.ReadAllBytes(Path.Combine(dir, DatasetKey.FileName));
            Assert.All(keys, k => Assert.Equal(onDisk, k));
            Assert.Equal(Path.Combine(dir, DatasetKey.FileName), Assert.Single(Directory.GetFileSystemEntries(dir)));
            Assert.Equal((UnixFileMode)0b110_000_000, File.GetUnixFileMode(Path.Combine(dir, DatasetKey.FileName)));
        }
    }
}
