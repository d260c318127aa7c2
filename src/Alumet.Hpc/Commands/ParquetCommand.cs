using System.CommandLine;
using Alumet.Hpc.Outputs.Parquet;

namespace Alumet.Hpc.Commands;

/// <summary>
/// <c>alumet-hpc parquet repair|check FILE|DIR...</c>: maintenance and verification of the Parquet files already written.
/// Both run as root on directories users own: symbolic links are never followed.
/// </summary>
public static class ParquetCommand
{
    public static Command Create()
    {
        var paths = new Argument<string[]>("path") { Description = "Parquet files, or directories searched recursively (symbolic links are not followed)", Arity = ArgumentArity.OneOrMore };
        var repair = new Command("repair", "Fix the timestamp statistics of files written before schema 2 (they made time filters drop rows); keeps owner and mode") { paths };
        repair.SetAction(pr => Repair(pr.GetValue(paths) ?? [], Console.Out, Console.Error));
        var check = new Command("check", "Verify, for every domain and interval of every job or node file, node = jobs + unattributed exactly on the stored integers; exit 0 all conserve, 1 a violation or an unreadable file, 2 a bad path") { paths };
        check.SetAction(pr => Check(pr.GetValue(paths) ?? [], Console.Out, Console.Error));
        return new Command("parquet", "Parquet file maintenance") { repair, check };
    }

    /// <summary>One line per file; exit 0 when nothing failed, 1 when a file could not be repaired, 2 when a path does not exist.</summary>
    public static int Repair(IEnumerable<string> paths, TextWriter output, TextWriter error)
    {
        int failed = 0, counted = 0;
        foreach (var path in paths)
        {
            if (!File.Exists(path) && !Directory.Exists(path))
            {
                error.WriteLine($"alumet-hpc parquet repair: {path}: no such file or directory");
                return 2;
            }
            foreach (var file in ParquetRepair.Files(path))
            {
                var r = ParquetRepair.RepairAsync(file).GetAwaiter().GetResult();
                counted++;
                string word = r.Outcome switch
                {
                    RepairOutcome.Repaired => "repaired",
                    RepairOutcome.AlreadyCorrect => "ok",
                    RepairOutcome.Skipped => "skipped",
                    _ => "failed",
                };
                (r.Outcome == RepairOutcome.Failed ? error : output).WriteLine($"{word}: {r.Path}: {r.Detail}");
                if (r.Outcome == RepairOutcome.Failed) failed++;
            }
        }
        output.WriteLine($"{counted} file(s), {failed} failed");
        return failed > 0 ? 1 : 0;
    }

    /// <summary>
    /// One line per file (<c>ok</c>, <c>violation</c>, <c>unchecked</c> when the file holds no split, <c>error</c>), then a
    /// total; exit 0 when every file conserves or has nothing to check, 1 on a violation or an unreadable file, 2 when a
    /// path does not exist or is a symbolic link (nothing is checked then).
    /// </summary>
    public static int Check(IReadOnlyList<string> paths, TextWriter output, TextWriter error)
    {
        foreach (var path in paths)
        {
            string? bad = !File.Exists(path) && !Directory.Exists(path) ? "no such file or directory"
                : new FileInfo(path).LinkTarget is not null ? "a symbolic link: not followed (give the real path)" : null;
            if (bad is null) continue;
            error.WriteLine($"alumet-hpc parquet check: {path}: {bad}");
            return 2;
        }
        int files = 0, ok = 0, violated = 0, nothing = 0, unreadable = 0;
        // Each argument under its real name (the admin's own links resolved once): a link met below it is then refused.
        foreach (var file in paths.Select(p => ParquetRows.RealPath(p) ?? p).SelectMany(ParquetRepair.Files))
        {
            var r = ParquetConservation.CheckAsync(file).GetAwaiter().GetResult();
            files++;
            switch (r.Outcome)
            {
                case ConservationOutcome.Conserves: ok++; output.WriteLine($"ok: {r.Path}: {r.Detail}"); break;
                case ConservationOutcome.NothingToCheck: nothing++; output.WriteLine($"unchecked: {r.Path}: {r.Detail}"); break;
                case ConservationOutcome.Violated: violated++; error.WriteLine($"violation: {r.Path}: {r.Detail}"); break;
                default: unreadable++; error.WriteLine($"error: {r.Path}: cannot be checked: {r.Detail}"); break;
            }
        }
        output.WriteLine($"{files} file(s): {ok} conserve, {violated} violate, {nothing} with nothing to check, {unreadable} unreadable");
        return violated + unreadable > 0 ? 1 : 0;
    }
}
