using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using static Alumet.Hpc.Outputs.Parquet.ThriftCompact;

namespace Alumet.Hpc.Outputs.Parquet;

/// <summary>Physical types of parquet.thrift used here.</summary>
public enum ParquetPhysicalType { Boolean = 0, Int32 = 1, Int64 = 2, Double = 5, ByteArray = 6 }

/// <summary>Logical annotation of a column (schema element's converted and logical type).</summary>
public enum ParquetAnnotation { None, String, Int32, Int64, TimestampMicrosUtc }

/// <summary>One REQUIRED top-level column.</summary>
public sealed record ParquetColumn(string Name, ParquetPhysicalType Type, ParquetAnnotation Annotation = ParquetAnnotation.None);

/// <summary>
/// A streaming writer of flat Parquet files (every column REQUIRED, top level), written for the job files: one row group
/// at a time, each column chunk one optional dictionary page and one data page (v1), Zstd-compressed, statistics in the
/// footer. Memory is one row group's encoded column at a time, in buffers reused across columns and row groups.
///
/// Why not Parquet.Net's writer (still used to read): its INT64 columns are PLAIN or DELTA_BINARY_PACKED only, and a raw
/// 1 kHz energy column costs 1.6 and 2.1 bytes per reading that way against ~1.2 dictionary-encoded (bench/README.md
/// "Parquet size"); and it buffers each row group several times over (the whole-life peak of a 10 s raw job was 66 MB).
/// Only standard encodings are written (PLAIN, RLE_DICTIONARY with a PLAIN dictionary page), which every reader decodes.
/// Field ids are those of parquet.thrift (https://github.com/apache/parquet-format).
/// </summary>
public sealed class ParquetFileWriter : IDisposable
{
    private static readonly byte[] Magic = "PAR1"u8.ToArray();

    // parquet.thrift enums and field ids
    private const long EncPlain = 0, EncRle = 3, EncRleDictionary = 8, CodecZstd = 6;
    private const long PageData = 0, PageDictionary = 2;

    /// <summary>Zstd level: the library's default (3). On a real raw spool levels 1-12 measured 1.81-1.94 B per reading, 3 the smallest.</summary>
    public const int ZstdLevel = 3;

    private readonly Stream _out;
    private readonly IReadOnlyList<ParquetColumn> _columns;
    private readonly ZstdSharp.Compressor _zstd = new(ZstdLevel);
    private readonly List<TStruct> _rowGroups = [];
    private readonly ByteBuffer _page = new(), _dict = new(), _header = new();
    private byte[] _compressed = [];
    private int[] _indices = [];
    private readonly Dictionary<long, int> _longDict = [];
    private long[] _dictValues = [];
    private int[] _dictCounts = [], _order = [], _rank = [];
    private long _position;
    private long _rows;

    // the row group being written
    private List<object>? _chunks;
    private int _groupRows, _column;
    private long _groupStart, _groupBytes;

    public ParquetFileWriter(Stream output, IReadOnlyList<ParquetColumn> columns)
    {
        // Long-distance matching: the series of one tick repeat their timestamps and intervals a whole series apart;
        // without it level 3's matcher misses that repeat when a column's values recur often (2.5 vs 3.5 B per row on
        // TestSpools.Realistic1kHz, no change on a real raw file).
        _zstd.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_enableLongDistanceMatching, 1);
        _out = output;
        _columns = columns;
        Write(Magic);
    }

    public long RowGroups => _rowGroups.Count;

    public void BeginRowGroup(int rows)
    {
        if (_chunks is not null) throw new InvalidOperationException("row group not ended");
        _chunks = new List<object>(_columns.Count);
        _groupRows = rows;
        _column = 0;
        _groupStart = _position;
        _groupBytes = 0;
    }

    /// <summary>INT64 column; with <paramref name="dictionary"/>, RLE_DICTIONARY when the values repeat enough to gain (else PLAIN).</summary>
    public void WriteInt64(ReadOnlySpan<long> values, bool dictionary = false)
    {
        Check(values.Length, ParquetPhysicalType.Int64);
        long min = long.MaxValue, max = long.MinValue;
        foreach (long v in values) { if (v < min) min = v; if (v > max) max = v; }
        var stats = Stats(values.Length == 0 ? null : Le(min), values.Length == 0 ? null : Le(max), legacy: true);
        if (dictionary && TryDictionary(values))
        {
            WriteChunk(hasDictionary: true, _longDict.Count, EncRleDictionary, stats);
            return;
        }
        _page.Clear();
        foreach (long v in values) _page.WriteInt64(v);
        WriteChunk(hasDictionary: false, 0, EncPlain, stats);
    }

    public void WriteInt32(ReadOnlySpan<int> values)
    {
        Check(values.Length, ParquetPhysicalType.Int32);
        int min = int.MaxValue, max = int.MinValue;
        _page.Clear();
        foreach (int v in values) { if (v < min) min = v; if (v > max) max = v; _page.WriteInt32(v); }
        WriteChunk(false, 0, EncPlain, Stats(values.Length == 0 ? null : Le32(min), values.Length == 0 ? null : Le32(max), legacy: true));
    }

    public void WriteDouble(ReadOnlySpan<double> values)
    {
        Check(values.Length, ParquetPhysicalType.Double);
        double min = double.PositiveInfinity, max = double.NegativeInfinity;
        bool nan = false;
        _page.Clear();
        foreach (double v in values)
        {
            if (double.IsNaN(v)) nan = true;
            else { if (v < min) min = v; if (v > max) max = v; }
            _page.WriteDouble(v);
        }
        // NaN has no order: no statistics rather than wrong ones (readers then never prune this chunk).
        bool any = values.Length > 0 && !nan;
        WriteChunk(false, 0, EncPlain, any ? Stats(LeD(min), LeD(max), legacy: true) : null);
    }

    public void WriteBoolean(ReadOnlySpan<bool> values)
    {
        Check(values.Length, ParquetPhysicalType.Boolean);
        bool anyTrue = false, anyFalse = false;
        _page.Clear();
        // PLAIN booleans: bit-packed, LSB first.
        for (int i = 0; i < values.Length; i += 8)
        {
            int b = 0;
            for (int k = 0; k < 8 && i + k < values.Length; k++)
                if (values[i + k]) { b |= 1 << k; anyTrue = true; } else anyFalse = true;
            _page.WriteByte((byte)b);
        }
        byte[]? mn = values.Length == 0 ? null : [anyFalse ? (byte)0 : (byte)1];
        byte[]? mx = values.Length == 0 ? null : [anyTrue ? (byte)1 : (byte)0];
        WriteChunk(false, 0, EncPlain, Stats(mn, mx, legacy: true));
    }

    /// <summary>A string column, dictionary-encoded: <paramref name="indices"/> (one per row) into <paramref name="dictionary"/> (UTF-8).</summary>
    public void WriteStrings(IReadOnlyList<byte[]> dictionary, ReadOnlySpan<int> indices)
    {
        Check(indices.Length, ParquetPhysicalType.ByteArray);
        _dict.Clear();
        foreach (var s in dictionary) { _dict.WriteInt32(s.Length); _dict.Write(s); }
        // Statistics over the values present (unsigned byte order, as min_value/max_value define for UTF-8).
        byte[]? min = null, max = null;
        int last = -1;
        foreach (int i in indices)
        {
            if (i == last) continue;
            last = i;
            var s = dictionary[i];
            if (min is null || s.AsSpan().SequenceCompareTo(min) < 0) min = s;
            if (max is null || s.AsSpan().SequenceCompareTo(max) > 0) max = s;
        }
        _page.Clear();
        WriteIndices(indices, dictionary.Count);
        WriteChunk(hasDictionary: true, dictionary.Count, EncRleDictionary, Stats(min, max, legacy: false));
    }

    public void EndRowGroup()
    {
        if (_chunks is null) throw new InvalidOperationException("no row group");
        if (_column != _columns.Count) throw new InvalidOperationException($"row group has {_column} of {_columns.Count} columns");
        var rg = new TStruct();
        rg.Set(1, List, new TList(Struct, _chunks));
        rg.Set(2, I64, _groupBytes);
        rg.Set(3, I64, (long)_groupRows);
        rg.Set(5, I64, _groupStart);
        rg.Set(6, I64, _position - _groupStart);
        rg.Set(7, I16, (long)_rowGroups.Count);
        _rowGroups.Add(rg);
        _rows += _groupRows;
        _chunks = null;
    }

    /// <summary>Writes the footer (schema, row groups, key/value metadata) and the closing magic.</summary>
    public void Finish(IReadOnlyDictionary<string, string> keyValues, string createdBy)
    {
        if (_chunks is not null) throw new InvalidOperationException("row group not ended");
        var schema = new List<object>(_columns.Count + 1);
        var root = new TStruct();
        root.Set(4, Binary, Encoding.UTF8.GetBytes("schema"));
        root.Set(5, I32, (long)_columns.Count);
        schema.Add(root);
        foreach (var c in _columns) schema.Add(SchemaElement(c));
        var kv = new List<object>(keyValues.Count);
        foreach (var (k, v) in keyValues)
        {
            var e = new TStruct();
            e.Set(1, Binary, Encoding.UTF8.GetBytes(k));
            e.Set(2, Binary, Encoding.UTF8.GetBytes(v));
            kv.Add(e);
        }
        var orders = new List<object>(_columns.Count);
        foreach (var _ in _columns)
        {
            var o = new TStruct();
            o.Set(1, Struct, new TStruct()); // TYPE_ORDER: min_value/max_value follow the column's type order
            orders.Add(o);
        }
        var meta = new TStruct();
        meta.Set(1, I32, 2L);
        meta.Set(2, List, new TList(Struct, schema));
        meta.Set(3, I64, _rows);
        meta.Set(4, List, new TList(Struct, [.. _rowGroups]));
        meta.Set(5, List, new TList(Struct, kv));
        meta.Set(6, Binary, Encoding.UTF8.GetBytes(createdBy));
        meta.Set(7, List, new TList(Struct, orders));
        byte[] footer = ThriftCompact.Write(meta);
        Write(footer);
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)footer.Length);
        Write(len);
        Write(Magic);
    }

    public void Dispose() => _zstd.Dispose();

    // ---------------------------------------------------------------- encoding

    /// <summary>
    /// Dictionary of a chunk's INT64 values, entries by decreasing frequency; false (nothing written) when there are
    /// more than a quarter as many distinct values as rows, where PLAIN is smaller (1 s storage: every energy differs).
    /// </summary>
    private bool TryDictionary(ReadOnlySpan<long> values)
    {
        _longDict.Clear();
        int limit = values.Length / 4;
        if (limit == 0) return false;
        if (_dictCounts.Length < limit + 1) _dictCounts = new int[limit + 1];
        foreach (long v in values)
        {
            if (!_longDict.TryGetValue(v, out int id))
            {
                id = _longDict.Count;
                if (id >= limit) return false;
                _longDict[v] = id;
                _dictCounts[id] = 0;
            }
            _dictCounts[id]++;
        }
        int n = _longDict.Count;
        if (_dictValues.Length < n) _dictValues = new long[Math.Max(n, 256)];
        foreach (var (v, id) in _longDict) _dictValues[id] = v;
        // Most frequent first: the small indices then carry most rows, which the compressor codes shortest.
        if (_order.Length < n) { _order = new int[_dictValues.Length]; _rank = new int[_dictValues.Length]; }
        var order = _order.AsSpan(0, n);
        var rank = _rank;
        for (int i = 0; i < n; i++) order[i] = i;
        var counts = _dictCounts;
        order.Sort((a, b) => counts[b] != counts[a] ? counts[b].CompareTo(counts[a]) : a.CompareTo(b));
        _dict.Clear();
        for (int r = 0; r < n; r++)
        {
            rank[order[r]] = r;
            _dict.WriteInt64(_dictValues[order[r]]);
        }
        if (_indices.Length < values.Length) _indices = new int[values.Length];
        for (int i = 0; i < values.Length; i++) _indices[i] = rank[_longDict[values[i]]];
        _page.Clear();
        WriteIndices(_indices.AsSpan(0, values.Length), n);
        return true;
    }

    /// <summary>RLE_DICTIONARY data page body: the bit width (1 byte), then RLE/bit-packed hybrid runs.</summary>
    private void WriteIndices(ReadOnlySpan<int> indices, int dictionarySize)
    {
        int width = Math.Max(1, 32 - BitOperations.LeadingZeroCount((uint)Math.Max(0, dictionarySize - 1)));
        _page.WriteByte((byte)width);
        RleHybrid.Encode(indices, width, _page);
    }

    private void Check(int rows, ParquetPhysicalType type)
    {
        if (_chunks is null) throw new InvalidOperationException("no row group");
        if (_column >= _columns.Count) throw new InvalidOperationException("more columns than the schema");
        var c = _columns[_column];
        if (c.Type != type) throw new InvalidOperationException($"column {c.Name} is {c.Type}, not {type}");
        if (rows != _groupRows) throw new InvalidOperationException($"column {c.Name}: {rows} values in a row group of {_groupRows} rows");
    }

    /// <summary>Writes the chunk: the dictionary page (in <see cref="_dict"/>) if any, then the data page (in <see cref="_page"/>).</summary>
    private void WriteChunk(bool hasDictionary, int dictionaryEntries, long encoding, TStruct? stats)
    {
        var c = _columns[_column];
        long start = _position;
        long dictOffset = -1, uncompressed = 0;
        if (hasDictionary)
        {
            dictOffset = _position;
            var dh = new TStruct();
            dh.Set(1, I32, (long)dictionaryEntries);
            dh.Set(2, I32, EncPlain);
            uncompressed += WritePage(PageDictionary, 7, dh, _dict);
        }
        long dataOffset = _position;
        var ph = new TStruct();
        ph.Set(1, I32, (long)_groupRows);
        ph.Set(2, I32, encoding);
        ph.Set(3, I32, EncRle);
        ph.Set(4, I32, EncRle);
        uncompressed += WritePage(PageData, 5, ph, _page);

        var cm = new TStruct();
        cm.Set(1, I32, (long)c.Type);
        var encodings = hasDictionary ? new List<object> { EncPlain, EncRleDictionary } : new List<object> { encoding };
        cm.Set(2, List, new TList(I32, encodings));
        cm.Set(3, List, new TList(Binary, [Encoding.UTF8.GetBytes(c.Name)]));
        cm.Set(4, I32, CodecZstd);
        cm.Set(5, I64, (long)_groupRows);
        cm.Set(6, I64, uncompressed);
        cm.Set(7, I64, _position - start);
        cm.Set(9, I64, dataOffset);
        if (dictOffset >= 0) cm.Set(11, I64, dictOffset);
        if (stats is not null) cm.Set(12, Struct, stats);
        var cc = new TStruct();
        cc.Set(2, I64, start);
        cc.Set(3, Struct, cm);
        _chunks!.Add(cc);
        _groupBytes += uncompressed;
        _column++;
    }

    /// <summary>One page: header then the Zstd frame of <paramref name="body"/>. Returns header + uncompressed body bytes.</summary>
    private long WritePage(long type, short headerField, TStruct typeHeader, ByteBuffer body)
    {
        int bound = ZstdSharp.Compressor.GetCompressBound(body.Length);
        if (_compressed.Length < bound) _compressed = new byte[Math.Max(bound, 64 * 1024)];
        int size = _zstd.Wrap(body.Span, _compressed);
        var h = new TStruct();
        h.Set(1, I32, type);
        h.Set(2, I32, (long)body.Length);
        h.Set(3, I32, (long)size);
        h.Set(headerField, Struct, typeHeader);
        _header.Clear();
        _header.Write(ThriftCompact.Write(h));
        Write(_header.Span);
        Write(_compressed.AsSpan(0, size));
        return _header.Length + body.Length;
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        _out.Write(bytes);
        _position += bytes.Length;
    }

    private static TStruct? Stats(byte[]? min, byte[]? max, bool legacy)
    {
        var s = new TStruct();
        s.Set(3, I64, 0L); // null_count: every column is REQUIRED
        if (min is null || max is null) return s;
        if (legacy)
        {
            // The deprecated min/max too, for readers that predate min_value/max_value (signed order = the type's order for numbers).
            s.Set(1, Binary, max);
            s.Set(2, Binary, min);
        }
        s.Set(5, Binary, (byte[])max.Clone());
        s.Set(6, Binary, (byte[])min.Clone());
        return s;
    }

    private static TStruct SchemaElement(ParquetColumn c)
    {
        var e = new TStruct();
        e.Set(1, I32, (long)c.Type);
        e.Set(3, I32, 0L); // REQUIRED
        e.Set(4, Binary, Encoding.UTF8.GetBytes(c.Name));
        var logical = new TStruct();
        switch (c.Annotation)
        {
            case ParquetAnnotation.String:
                e.Set(6, I32, 0L); // UTF8
                logical.Set(1, Struct, new TStruct());
                break;
            case ParquetAnnotation.Int32:
            case ParquetAnnotation.Int64:
                e.Set(6, I32, c.Annotation == ParquetAnnotation.Int32 ? 17L : 18L); // INT_32 / INT_64
                var it = new TStruct();
                it.Set(1, ThriftCompact.Byte, c.Annotation == ParquetAnnotation.Int32 ? 32L : 64L);
                it.Set(2, True, true);
                logical.Set(10, Struct, it);
                break;
            case ParquetAnnotation.TimestampMicrosUtc:
                e.Set(6, I32, 10L); // TIMESTAMP_MICROS
                var unit = new TStruct();
                unit.Set(2, Struct, new TStruct()); // MICROS
                var ts = new TStruct();
                ts.Set(1, True, true); // isAdjustedToUTC
                ts.Set(2, Struct, unit);
                logical.Set(8, Struct, ts);
                break;
        }
        if (logical.Fields.Count > 0) e.Set(10, Struct, logical);
        return e;
    }

    private static byte[] Le(long v) { var b = new byte[8]; BinaryPrimitives.WriteInt64LittleEndian(b, v); return b; }
    private static byte[] Le32(int v) { var b = new byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, v); return b; }
    private static byte[] LeD(double v) { var b = new byte[8]; BinaryPrimitives.WriteDoubleLittleEndian(b, v); return b; }
}

/// <summary>Parquet's RLE/bit-packed hybrid encoding (Encodings.md): runs of 8+ equal values as RLE runs, the rest bit-packed in groups of 8.</summary>
public static class RleHybrid
{
    public static void Encode(ReadOnlySpan<int> values, int width, ByteBuffer o)
    {
        int n = values.Length;
        int litStart = 0, litCount = 0;
        int i = 0;
        while (i < n)
        {
            int run = 1;
            while (i + run < n && values[i + run] == values[i]) run++;
            if (run >= 8)
            {
                if (litCount > 0)
                {
                    // A bit-packed run holds a multiple of 8 values: take the first of this run into it.
                    int pad = (8 - litCount % 8) % 8;
                    litCount += pad; i += pad; run -= pad;
                    BitPacked(values.Slice(litStart, litCount), width, o);
                    litCount = 0;
                    if (run < 8) { litStart = i; continue; }
                }
                o.WriteVarint((ulong)run << 1);
                int v = values[i];
                for (int b = 0; b < (width + 7) / 8; b++) o.WriteByte((byte)(v >> (8 * b)));
                i += run;
                litStart = i;
            }
            else
            {
                if (litCount == 0) litStart = i;
                litCount += run;
                i += run;
            }
        }
        if (litCount > 0) BitPacked(values.Slice(litStart, litCount), width, o); // the last group is padded with zeros
    }

    private static void BitPacked(ReadOnlySpan<int> values, int width, ByteBuffer o)
    {
        int groups = (values.Length + 7) / 8;
        o.WriteVarint(((ulong)groups << 1) | 1);
        ulong acc = 0;
        int bits = 0;
        for (int i = 0; i < groups * 8; i++)
        {
            ulong v = i < values.Length ? (uint)values[i] : 0;
            acc |= v << bits;
            bits += width;
            while (bits >= 8)
            {
                o.WriteByte((byte)acc);
                acc >>= 8;
                bits -= 8;
            }
        }
    }
}

/// <summary>A growable byte buffer reused across pages (no per-page allocation once it has grown).</summary>
public sealed class ByteBuffer
{
    private byte[] _buf = new byte[4096];
    public int Length { get; private set; }
    public ReadOnlySpan<byte> Span => _buf.AsSpan(0, Length);

    public void Clear() => Length = 0;

    private Span<byte> Take(int n)
    {
        if (Length + n > _buf.Length) Array.Resize(ref _buf, Math.Max(_buf.Length * 2, Length + n));
        var s = _buf.AsSpan(Length, n);
        Length += n;
        return s;
    }

    public void WriteByte(byte b) => Take(1)[0] = b;
    public void Write(ReadOnlySpan<byte> b) => b.CopyTo(Take(b.Length));
    public void WriteInt32(int v) => BinaryPrimitives.WriteInt32LittleEndian(Take(4), v);
    public void WriteInt64(long v) => BinaryPrimitives.WriteInt64LittleEndian(Take(8), v);
    public void WriteDouble(double v) => BinaryPrimitives.WriteDoubleLittleEndian(Take(8), v);

    public void WriteVarint(ulong v)
    {
        while (v >= 0x80) { WriteByte((byte)(v | 0x80)); v >>= 7; }
        WriteByte((byte)v);
    }
}
