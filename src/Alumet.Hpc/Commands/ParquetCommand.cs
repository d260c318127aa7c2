using System.CommandLine;
using Alumet.Hpc.Outputs.Parquet;

namespace Alumet.Hpc.Commands;

/// <summary><c>alumet-hpc parquet repair FILE|DIR...</c>: maintenance of the Parquet files already written.</summary>
public static class ParquetCommand
{
    public static Command Create()
    {
        var paths = new Argument<string[]>("path") { Description = "Parquet files, or directories searched recursively (symbolic links are not followed)", Arity = ArgumentArity.OneOrMore };
        var repair = new Command("repair", "Fix the timestamp statistics of files written before schema 2 (they made time filters drop rows); keeps owner and mode") { paths };
        repair.SetAction(pr => Repair(pr.GetValue(paths) ?? [], Console.Out, Console.Error));
        return new Command("parquet", "Parquet file maintenance") { repair };
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
}
