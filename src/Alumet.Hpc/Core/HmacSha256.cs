using System.Buffers.Binary;
using System.Numerics;

namespace Alumet.Hpc.Core;

/// <summary>
/// HMAC-SHA256 (RFC 2104 over FIPS 180-4's SHA-256) in managed code, for the keyed tag of job file names
/// (<see cref="Outputs.Parquet.ParquetDataset"/>). <c>System.Security.Cryptography.HMACSHA256</c> gives the same bytes,
/// but on Linux it loads and initialises OpenSSL (libssl, libcrypto) into the process: +4.7 MB of peak RSS in every
/// <c>finalize-job</c> child for one 64-bit tag per job (docs/performance-log.md, 2026-12-03). Not a general-purpose
/// implementation: no constant-time claims beyond what a name tag needs (the key never leaves the state dir and the tag
/// is public in the file's name). Checked against the BCL's and RFC 4231's vectors (HmacSha256Tests).
/// </summary>
public static class HmacSha256
{
    public const int HashSizeInBytes = 32;
    private const int BlockSize = 64;

    private static readonly uint[] K =
    [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];

    /// <summary>HMAC-SHA256(<paramref name="key"/>, <paramref name="message"/>) into <paramref name="mac"/> (32 bytes).</summary>
    public static void HashData(ReadOnlySpan<byte> key, ReadOnlySpan<byte> message, Span<byte> mac)
    {
        if (mac.Length < HashSizeInBytes) throw new ArgumentException($"the MAC needs {HashSizeInBytes} bytes", nameof(mac));
        Span<byte> k0 = stackalloc byte[BlockSize];
        k0.Clear();
        if (key.Length > BlockSize) Sha256(key, k0);
        else key.CopyTo(k0);
        Span<byte> pad = stackalloc byte[BlockSize];
        Span<byte> inner = stackalloc byte[HashSizeInBytes];
        for (int i = 0; i < BlockSize; i++) pad[i] = (byte)(k0[i] ^ 0x36);
        var h = new State();
        h.Append(pad);
        h.Append(message);
        h.Finish(inner);
        for (int i = 0; i < BlockSize; i++) pad[i] = (byte)(k0[i] ^ 0x5c);
        h = new State();
        h.Append(pad);
        h.Append(inner);
        h.Finish(mac);
    }

    /// <summary>SHA-256 of <paramref name="data"/> into <paramref name="hash"/> (32 bytes).</summary>
    public static void Sha256(ReadOnlySpan<byte> data, Span<byte> hash)
    {
        var h = new State();
        h.Append(data);
        h.Finish(hash);
    }

    private sealed class State
    {
        private readonly uint[] _h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
        private readonly byte[] _block = new byte[BlockSize];
        private readonly uint[] _w = new uint[64];
        private int _filled;
        private long _bytes;

        public void Append(ReadOnlySpan<byte> data)
        {
            _bytes += data.Length;
            while (data.Length > 0)
            {
                int n = Math.Min(BlockSize - _filled, data.Length);
                data[..n].CopyTo(_block.AsSpan(_filled));
                _filled += n;
                data = data[n..];
                if (_filled == BlockSize) { Compress(); _filled = 0; }
            }
        }

        public void Finish(Span<byte> hash)
        {
            long bits = _bytes * 8;
            _block[_filled++] = 0x80;
            if (_filled > BlockSize - 8)
            {
                _block.AsSpan(_filled).Clear();
                Compress();
                _filled = 0;
            }
            _block.AsSpan(_filled, BlockSize - 8 - _filled).Clear();
            BinaryPrimitives.WriteInt64BigEndian(_block.AsSpan(BlockSize - 8), bits);
            Compress();
            for (int i = 0; i < 8; i++) BinaryPrimitives.WriteUInt32BigEndian(hash.Slice(4 * i, 4), _h[i]);
        }

        private void Compress()
        {
            var w = _w;
            for (int t = 0; t < 16; t++) w[t] = BinaryPrimitives.ReadUInt32BigEndian(_block.AsSpan(4 * t, 4));
            for (int t = 16; t < 64; t++)
            {
                uint s0 = BitOperations.RotateRight(w[t - 15], 7) ^ BitOperations.RotateRight(w[t - 15], 18) ^ (w[t - 15] >> 3);
                uint s1 = BitOperations.RotateRight(w[t - 2], 17) ^ BitOperations.RotateRight(w[t - 2], 19) ^ (w[t - 2] >> 10);
                w[t] = w[t - 16] + s0 + w[t - 7] + s1;
            }
            uint a = _h[0], b = _h[1], c = _h[2], d = _h[3], e = _h[4], f = _h[5], g = _h[6], h = _h[7];
            for (int t = 0; t < 64; t++)
            {
                uint t1 = h + (BitOperations.RotateRight(e, 6) ^ BitOperations.RotateRight(e, 11) ^ BitOperations.RotateRight(e, 25))
                    + ((e & f) ^ (~e & g)) + K[t] + w[t];
                uint t2 = (BitOperations.RotateRight(a, 2) ^ BitOperations.RotateRight(a, 13) ^ BitOperations.RotateRight(a, 22))
                    + ((a & b) ^ (a & c) ^ (b & c));
                h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
            }
            _h[0] += a; _h[1] += b; _h[2] += c; _h[3] += d; _h[4] += e; _h[5] += f; _h[6] += g; _h[7] += h;
        }
    }
}
