using System.Buffers.Binary;
using System.Text;

namespace Alumet.Hpc.Outputs.Parquet;

/// <summary>
/// A generic Thrift compact-protocol value tree: enough to read a Parquet footer or page header, change a few fields
/// and write it back byte-compatible (Parquet's metadata is Thrift compact, https://github.com/apache/parquet-format).
/// Parquet.Net keeps its own Thrift classes internal, so the statistics fix (<see cref="ParquetFooter"/>) edits the
/// footer through this tree instead. Unknown fields are carried through unchanged.
/// </summary>
public static class ThriftCompact
{
    public const byte Stop = 0, True = 1, False = 2, Byte = 3, I16 = 4, I32 = 5, I64 = 6, Double = 7, Binary = 8, List = 9, Set = 10, Map = 11, Struct = 12;

    /// <summary>One field of a struct: id, compact type, value (long, bool, double, byte[], <see cref="TList"/>, <see cref="TMap"/>, <see cref="TStruct"/>).</summary>
    public sealed class TField(short id, byte type, object value)
    {
        public short Id { get; } = id;
        public byte Type { get; set; } = type;
        public object Value { get; set; } = value;
    }

    public sealed class TStruct
    {
        public List<TField> Fields { get; } = [];

        public TField? Get(short id) => Fields.Find(f => f.Id == id);
        public TStruct? Struct(short id) => Get(id)?.Value as TStruct;
        public TList? ListOf(short id) => Get(id)?.Value as TList;
        public long? Int(short id) => Get(id)?.Value is long l ? l : null;
        public byte[]? Bytes(short id) => Get(id)?.Value as byte[];
        public string? String(short id) => Bytes(id) is { } b ? Encoding.UTF8.GetString(b) : null;

        /// <summary>Sets (or adds, keeping ids in ascending order as writers do) a field.</summary>
        public void Set(short id, byte type, object value)
        {
            if (type is True or False) { value = type == True; }
            var f = Get(id);
            if (f is not null) { f.Type = type; f.Value = value; return; }
            int at = Fields.FindIndex(x => x.Id > id);
            var nf = new TField(id, type, value);
            if (at < 0) Fields.Add(nf); else Fields.Insert(at, nf);
        }

        public void Remove(short id) => Fields.RemoveAll(f => f.Id == id);
    }

    public sealed class TList(byte elementType, List<object> items)
    {
        public byte ElementType { get; } = elementType;
        public List<object> Items { get; } = items;
    }

    public sealed class TMap(byte keyType, byte valueType, List<(object Key, object Value)> entries)
    {
        public byte KeyType { get; } = keyType;
        public byte ValueType { get; } = valueType;
        public List<(object Key, object Value)> Entries { get; } = entries;
    }

    // ---------------------------------------------------------------- reading

    /// <summary>Reads one struct starting at <paramref name="pos"/>; <paramref name="pos"/> ends after its STOP byte.</summary>
    public static TStruct ReadStruct(ReadOnlySpan<byte> buf, ref int pos, int depth = 0)
    {
        if (depth > 64) throw new InvalidDataException("Thrift structure nested too deeply");
        var s = new TStruct();
        short last = 0;
        while (true)
        {
            byte header = At(buf, pos++);
            if (header == Stop) return s;
            byte type = (byte)(header & 0x0F);
            int delta = header >> 4;
            short id = delta != 0 ? (short)(last + delta) : (short)ZigZag(ReadVarint(buf, ref pos));
            last = id;
            object value = type switch
            {
                True => true,
                False => false,
                _ => ReadValue(buf, ref pos, type, depth),
            };
            s.Fields.Add(new TField(id, type, value));
        }
    }

    private static object ReadValue(ReadOnlySpan<byte> buf, ref int pos, byte type, int depth)
    {
        switch (type)
        {
            case True: case False: return At(buf, pos++) == 1; // list elements: one byte
            case Byte: return (long)(sbyte)At(buf, pos++);
            case I16: case I32: case I64: return ZigZag(ReadVarint(buf, ref pos));
            case Double:
                if (pos + 8 > buf.Length) throw Truncated();
                double d = BinaryPrimitives.ReadDoubleLittleEndian(buf[pos..]);
                pos += 8;
                return d;
            case Binary:
                int len = checked((int)ReadVarint(buf, ref pos));
                if (len < 0 || pos + len > buf.Length) throw Truncated();
                var bytes = buf.Slice(pos, len).ToArray();
                pos += len;
                return bytes;
            case List: case Set:
            {
                byte h = At(buf, pos++);
                int size = h >> 4;
                if (size == 15) size = checked((int)ReadVarint(buf, ref pos));
                byte et = (byte)(h & 0x0F);
                if (size > buf.Length) throw Truncated();
                var items = new List<object>(size);
                for (int i = 0; i < size; i++) items.Add(ReadValue(buf, ref pos, et, depth + 1));
                return new TList(et, items);
            }
            case Map:
            {
                int size = checked((int)ReadVarint(buf, ref pos));
                if (size > buf.Length) throw Truncated();
                byte kv = size > 0 ? At(buf, pos++) : (byte)0;
                var entries = new List<(object, object)>(size);
                for (int i = 0; i < size; i++)
                    entries.Add((ReadValue(buf, ref pos, (byte)(kv >> 4), depth + 1), ReadValue(buf, ref pos, (byte)(kv & 0x0F), depth + 1)));
                return new TMap((byte)(kv >> 4), (byte)(kv & 0x0F), entries);
            }
            case Struct: return ReadStruct(buf, ref pos, depth + 1);
            default: throw new InvalidDataException($"unknown Thrift compact type {type}");
        }
    }

    private static byte At(ReadOnlySpan<byte> buf, int pos) => pos < buf.Length ? buf[pos] : throw Truncated();

    private static InvalidDataException Truncated() => new("truncated Thrift structure");

    private static ulong ReadVarint(ReadOnlySpan<byte> buf, ref int pos)
    {
        ulong result = 0;
        for (int shift = 0; shift < 70; shift += 7)
        {
            byte b = At(buf, pos++);
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return result;
        }
        throw new InvalidDataException("malformed Thrift varint");
    }

    private static long ZigZag(ulong n) => (long)(n >> 1) ^ -(long)(n & 1);

    // ---------------------------------------------------------------- writing

    public static byte[] Write(TStruct s)
    {
        var ms = new MemoryStream();
        WriteStruct(ms, s);
        return ms.ToArray();
    }

    private static void WriteStruct(MemoryStream ms, TStruct s)
    {
        short last = 0;
        foreach (var f in s.Fields)
        {
            byte type = f.Type is True or False ? ((bool)f.Value ? True : False) : f.Type;
            int delta = f.Id - last;
            if (delta is > 0 and <= 15) ms.WriteByte((byte)(delta << 4 | type));
            else { ms.WriteByte(type); WriteVarint(ms, ToZigZag(f.Id)); }
            last = f.Id;
            if (type is not (True or False)) WriteValue(ms, type, f.Value);
        }
        ms.WriteByte(Stop);
    }

    private static void WriteValue(MemoryStream ms, byte type, object v)
    {
        switch (type)
        {
            case True: case False: ms.WriteByte((bool)v ? (byte)1 : (byte)0); break;
            case Byte: ms.WriteByte((byte)(sbyte)(long)v); break;
            case I16: case I32: case I64: WriteVarint(ms, ToZigZag((long)v)); break;
            case Double:
                Span<byte> d = stackalloc byte[8];
                BinaryPrimitives.WriteDoubleLittleEndian(d, (double)v);
                ms.Write(d);
                break;
            case Binary:
                var b = (byte[])v;
                WriteVarint(ms, (ulong)b.Length);
                ms.Write(b);
                break;
            case List: case Set:
            {
                var l = (TList)v;
                if (l.Items.Count < 15) ms.WriteByte((byte)(l.Items.Count << 4 | l.ElementType));
                else { ms.WriteByte((byte)(0xF0 | l.ElementType)); WriteVarint(ms, (ulong)l.Items.Count); }
                foreach (var item in l.Items) WriteValue(ms, l.ElementType, item);
                break;
            }
            case Map:
            {
                var m = (TMap)v;
                WriteVarint(ms, (ulong)m.Entries.Count);
                if (m.Entries.Count > 0) ms.WriteByte((byte)(m.KeyType << 4 | m.ValueType));
                foreach (var (k, val) in m.Entries) { WriteValue(ms, m.KeyType, k); WriteValue(ms, m.ValueType, val); }
                break;
            }
            case Struct: WriteStruct(ms, (TStruct)v); break;
            default: throw new InvalidDataException($"unknown Thrift compact type {type}");
        }
    }

    private static ulong ToZigZag(long n) => (ulong)((n << 1) ^ (n >> 63));

    private static void WriteVarint(MemoryStream ms, ulong n)
    {
        while (n >= 0x80)
        {
            ms.WriteByte((byte)(n | 0x80));
            n >>= 7;
        }
        ms.WriteByte((byte)n);
    }
}
