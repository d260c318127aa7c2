using System.Buffers.Binary;
using System.Text;
using static Alumet.Hpc.Outputs.Parquet.ThriftCompact;

namespace Alumet.Hpc.Outputs.Parquet;

/// <summary>
/// A Parquet file's footer (FileMetaData, Thrift compact) as an editable tree, and the edits this project needs.
/// A Parquet file ends with <c>footer, footer length (u32 LE), "PAR1"</c>; the footer is rewritten in place of the old
/// one. Field ids are those of parquet.thrift (https://github.com/apache/parquet-format).
///
/// Why it exists: Parquet.Net 6.1 encodes the min/max statistics of every INT64 <see cref="DateTime"/> column in
/// milliseconds, also for TIMESTAMP(MICROS) columns (ParquetPlainEncoder.TryEncode(DateTime)), so readers that prune
/// on statistics (DuckDB, Spark, Trino) skip row groups that match a time filter. Files are now written by
/// <see cref="ParquetFileWriter"/> (right statistics); <see cref="ParquetRepair"/> uses this tree to fix files written
/// before schema 2.
/// </summary>
public sealed class ParquetFooter
{
    private static readonly byte[] Magic = "PAR1"u8.ToArray();

    // FileMetaData
    private const short FmSchema = 2, FmRowGroups = 4, FmKeyValue = 5;
    // SchemaElement
    private const short SeType = 1, SeName = 4, SeConvertedType = 6, SeLogicalType = 10;
    // RowGroup / ColumnChunk / ColumnMetaData / Statistics
    private const short RgColumns = 1, CcMetaData = 3, CmPath = 3, CmDataPageOffset = 9, CmDictionaryPageOffset = 11, CmStatistics = 12;
    private const short StMax = 1, StMin = 2, StMaxValue = 5, StMinValue = 6;
    // LogicalType union: 8 = TIMESTAMP(1 isAdjustedToUTC, 2 unit: union 2 = MICROS); ConvertedType 10 = TIMESTAMP_MICROS
    private const short LtTimestamp = 8, TsUtc = 1, TsUnit = 2, UnitMicros = 2;
    private const long ConvertedTimestampMicros = 10;
    private const long PhysicalInt64 = 2;

    public TStruct Meta { get; }
    /// <summary>File offset where the footer starts (= end of the last column chunk).</summary>
    public long Offset { get; }

    private ParquetFooter(TStruct meta, long offset) { Meta = meta; Offset = offset; }

    /// <summary>Reads the footer of the file <paramref name="fs"/>.</summary>
    /// <exception cref="InvalidDataException">Not a Parquet file; the message does not name the file (its caller does:
    /// <c>parquet repair</c> printed the path twice).</exception>
    public static ParquetFooter Read(FileStream fs)
    {
        long len = fs.Length;
        Span<byte> tail = stackalloc byte[8];
        if (len < 12) throw new InvalidDataException("not a Parquet file (too short)");
        fs.Position = len - 8;
        fs.ReadExactly(tail);
        if (!tail[4..].SequenceEqual(Magic)) throw new InvalidDataException("not a Parquet file (no PAR1 at the end)");
        long footerLen = BinaryPrimitives.ReadUInt32LittleEndian(tail);
        long offset = len - 8 - footerLen;
        if (offset < 4) throw new InvalidDataException("corrupt Parquet footer length");
        var buf = new byte[footerLen];
        fs.Position = offset;
        fs.ReadExactly(buf);
        int pos = 0;
        return new ParquetFooter(ReadStruct(buf, ref pos), offset);
    }

    /// <summary>Replaces the footer: truncates at <see cref="Offset"/>, writes the new one with its length and magic, syncs.</summary>
    public void WriteTo(FileStream fs)
    {
        byte[] bytes = Write(Meta);
        fs.SetLength(Offset);
        fs.Position = Offset;
        fs.Write(bytes);
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)bytes.Length);
        fs.Write(len);
        fs.Write(Magic);
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Top-level schema element of a column, or null.</summary>
    public TStruct? SchemaElement(string column) =>
        Meta.ListOf(FmSchema)?.Items.OfType<TStruct>().Skip(1).FirstOrDefault(e => e.String(SeName) == column);

    /// <summary>Whether a column is TIMESTAMP with microsecond unit (logical or converted type).</summary>
    public bool IsTimestampMicros(string column)
    {
        var e = SchemaElement(column);
        if (e is null || e.Int(SeType) != PhysicalInt64) return false;
        if (e.Int(SeConvertedType) == ConvertedTimestampMicros) return true;
        return e.Struct(SeLogicalType)?.Struct(LtTimestamp)?.Struct(TsUnit)?.Get(UnitMicros) is not null;
    }

    /// <summary>ColumnMetaData of a top-level column in each row group, in row group order.</summary>
    public IEnumerable<TStruct> ColumnChunks(string column)
    {
        foreach (var rg in Meta.ListOf(FmRowGroups)?.Items.OfType<TStruct>() ?? [])
            foreach (var cc in rg.ListOf(RgColumns)?.Items.OfType<TStruct>() ?? [])
            {
                var cm = cc.Struct(CcMetaData);
                var path = cm?.ListOf(CmPath)?.Items;
                if (cm is not null && path is { Count: 1 } && path[0] is byte[] p && Encoding.UTF8.GetString(p) == column)
                    yield return cm;
            }
    }

    /// <summary>First page of a column chunk (dictionary page if any, else the first data page).</summary>
    public static long FirstPageOffset(TStruct columnMeta) =>
        columnMeta.Int(CmDictionaryPageOffset) is long d and > 0 ? d : columnMeta.Int(CmDataPageOffset) ?? 0;

    /// <summary>INT64 min/max of a column chunk's statistics (new min_value/max_value, else the deprecated min/max), or null.</summary>
    public static (long Min, long Max)? Int64Statistics(TStruct columnMeta)
    {
        var st = columnMeta.Struct(CmStatistics);
        if (st is null) return null;
        var min = st.Bytes(StMinValue) ?? st.Bytes(StMin);
        var max = st.Bytes(StMaxValue) ?? st.Bytes(StMax);
        if (min is not { Length: 8 } || max is not { Length: 8 }) return null;
        return (BinaryPrimitives.ReadInt64LittleEndian(min), BinaryPrimitives.ReadInt64LittleEndian(max));
    }

    /// <summary>Sets INT64 min/max in a statistics struct (both the current and the deprecated fields, as writers do).</summary>
    public static void SetInt64Statistics(TStruct statistics, long min, long max)
    {
        var mn = new byte[8];
        var mx = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(mn, min);
        BinaryPrimitives.WriteInt64LittleEndian(mx, max);
        statistics.Set(StMax, Binary, mx);
        statistics.Set(StMin, Binary, mn);
        statistics.Set(StMaxValue, Binary, (byte[])mx.Clone());
        statistics.Set(StMinValue, Binary, (byte[])mn.Clone());
    }

    public static TStruct StatisticsOf(TStruct columnMeta)
    {
        if (columnMeta.Struct(CmStatistics) is { } st) return st;
        var s = new TStruct();
        columnMeta.Set(CmStatistics, Struct, s);
        return s;
    }

    public string? GetKeyValue(string key) =>
        Meta.ListOf(FmKeyValue)?.Items.OfType<TStruct>().FirstOrDefault(kv => kv.String(1) == key)?.String(2);

    public void SetKeyValue(string key, string value)
    {
        var list = Meta.ListOf(FmKeyValue);
        if (list is null)
        {
            list = new TList(Struct, []);
            Meta.Set(FmKeyValue, List, list);
        }
        var kv = list.Items.OfType<TStruct>().FirstOrDefault(x => x.String(1) == key);
        if (kv is null)
        {
            kv = new TStruct();
            kv.Set(1, Binary, Encoding.UTF8.GetBytes(key));
            list.Items.Add(kv);
        }
        kv.Set(2, Binary, Encoding.UTF8.GetBytes(value));
    }
}
