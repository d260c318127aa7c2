using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace Alumet.Hpc.Spool;

/// <summary>
/// Append-only spool of raw records. Records accumulate in a fixed buffer and reach the file at each
/// <see cref="Flush"/> (every flush interval, ≤ 5 s by default 1 s): a kill -9 loses at most one interval, and
/// everything flushed stays readable because the format is a plain array of fixed-size records.
/// Why a spool and not Parquet part files: appending 32-byte records costs a memcpy per sample and one write(2)
/// per flush, keeps memory constant, and Parquet's footer-at-the-end format cannot be read after a crash.
/// The spool is converted to Parquet, in bounded row groups, when the job ends.
/// </summary>
public sealed class SpoolWriter : IDisposable
{
    public const string RecordsFile = "spool.bin";
    public const string MetaFile = "meta.json";

    private readonly SafeFileHandle _file;
    private readonly byte[] _buffer;
    private int _used;
    private long _offset;

    public long RecordsWritten { get; private set; }

    public SpoolWriter(string directory, SpoolMeta meta, int bufferRecords = 64 * 1024)
    {
        Directory.CreateDirectory(directory);
        WriteMeta(directory, meta);
        string path = Path.Combine(directory, RecordsFile);
        _file = File.OpenHandle(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        _offset = RandomAccess.GetLength(_file);
        _offset -= _offset % SpoolRecord.Size; // never append after a torn record
        _buffer = GC.AllocateUninitializedArray<byte>(bufferRecords * SpoolRecord.Size, pinned: true);
    }

    public static void WriteMeta(string directory, SpoolMeta meta)
    {
        Core.AtomicFile.WriteAllText(Path.Combine(directory, MetaFile), JsonSerializer.Serialize(meta, SpoolJsonContext.Default.SpoolMeta));
    }

    public static SpoolMeta ReadMeta(string directory)
    {
        string path = Path.Combine(directory, MetaFile);
        return JsonSerializer.Deserialize(File.ReadAllText(path), SpoolJsonContext.Default.SpoolMeta)
            ?? throw new InvalidDataException($"{path}: empty spool metadata");
    }

    /// <summary>Buffers one record; flushes first if the buffer is full. No allocation.</summary>
    public void Append(in SpoolRecord record)
    {
        if (_used + SpoolRecord.Size > _buffer.Length) Flush();
        MemoryMarshal.Write(_buffer.AsSpan(_used), in record);
        _used += SpoolRecord.Size;
        RecordsWritten++;
    }

    /// <summary>Writes buffered records to the file (one write(2)). Page cache, not fsync: survives a process crash.</summary>
    public void Flush()
    {
        if (_used == 0) return;
        RandomAccess.Write(_file, _buffer.AsSpan(0, _used), _offset);
        _offset += _used;
        _used = 0;
    }

    public void Dispose()
    {
        Flush();
        _file.Dispose();
    }
}
