using Alumet.Hpc.Spool;

namespace Alumet.Hpc.Tests.Spool;

/// <summary>
/// <see cref="SpoolWriter.Append(ReadOnlySpan{SpoolRecord}, ReadOnlySpan{int})"/>, the raw tick's append of one source
/// read's records (each naming its channel, given the spool's series id of it): the same file, written at the same record
/// boundaries, as one <see cref="SpoolWriter.Append(in SpoolRecord)"/> per record with that id — across the 16 KiB
/// writes, inside reserved groups (a period's split) and around flushes.
/// </summary>
public sealed class SpoolWriterBulkAppendTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("alumet-bulk-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static long Length(string dir) => new FileInfo(Path.Combine(dir, SpoolWriter.RecordsFile)).Length;

    [Fact]
    public void ABlockAppendWritesWhatAppendingEachRecordWritesAndWhenItWritesIt()
    {
        string one = Path.Combine(_dir, "one"), bulk = Path.Combine(_dir, "bulk");
        using (var byRecord = new SpoolWriter(one, new SpoolMeta()))
        using (var byBlock = new SpoolWriter(bulk, new SpoolMeta()))
        {
            var rng = new Random(8);
            long serial = 0;
            var block = new SpoolRecord[9];
            int blocks = 0, groups = 0, flushes = 0;
            while (serial < 5_000)
            {
                int roll = rng.Next(100);
                if (roll < 3)
                {
                    // A reserved group (the snapshot's split), record by record on both, then maybe a block inside it.
                    int size = rng.Next(1, 40);
                    byRecord.Reserve(size);
                    byBlock.Reserve(size);
                    for (int k = 0; k < size; k++)
                    {
                        var r = Record(serial++);
                        if (k == 0 && size > 3) byRecord.Append(Mapped(r));
                        else byRecord.Append(in r);
                        if (k == 0 && size > 3)
                        {
                            // Three records as a block in the middle of the group: no write in its middle either.
                            var r2 = Record(serial++);
                            var r3 = Record(serial++);
                            byRecord.Append(Mapped(r2));
                            byRecord.Append(Mapped(r3));
                            byBlock.Append([r, r2, r3], Ids);
                            k += 2;
                        }
                        else byBlock.Append(in r);
                    }
                    groups++;
                }
                else if (roll < 5)
                {
                    byRecord.Flush();
                    byBlock.Flush();
                    flushes++;
                }
                else
                {
                    int n = rng.Next(0, block.Length + 1); // 0 too: a read with nothing stored
                    for (int k = 0; k < n; k++) block[k] = Record(serial++);
                    foreach (var r in block.AsSpan(0, n)) byRecord.Append(Mapped(r));
                    byBlock.Append(block.AsSpan(0, n), Ids);
                    blocks++;
                }
                // The same writes so far: the file has the same length after every call (the 16 KiB writes at the same record).
                Assert.Equal(Length(one), Length(bulk));
                Assert.Equal(byRecord.RecordsWritten, byBlock.RecordsWritten);
            }
            Assert.True(Length(one) >= 9 * SpoolWriter.WriteBytes, $"{Length(one)} bytes: too few 16 KiB writes to compare");
            Assert.True(blocks > 100 && groups > 5 && flushes > 5, $"{blocks} blocks, {groups} groups, {flushes} flushes");
        }
        Assert.Equal(File.ReadAllBytes(Path.Combine(one, SpoolWriter.RecordsFile)), File.ReadAllBytes(Path.Combine(bulk, SpoolWriter.RecordsFile)));
    }

    /// <summary>A spool's series ids of the 13 channels the records name (not in channel order).</summary>
    private static readonly int[] Ids = [40, 3, 17, 0, 22, 9, 31, 5, 12, 27, 1, 38, 6];

    private static SpoolRecord Mapped(SpoolRecord r) => r with { Series = Ids[r.Series] };

    private static SpoolRecord Record(long serial) => new()
    {
        WallNs = 1_700_000_000_000_000_000 + serial * 1_000_000,
        IntervalNs = 1_000_000 + serial % 7,
        Value = serial * 3,
        Series = (int)(serial % 13),
        Flags = (SpoolFlags)(serial % 8),
    };
}
