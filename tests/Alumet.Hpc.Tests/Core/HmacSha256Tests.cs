using System.Security.Cryptography;
using System.Text;
using Alumet.Hpc.Core;

namespace Alumet.Hpc.Tests.Core;

/// <summary>
/// The managed HMAC-SHA256 of job file names' tags (Core.HmacSha256, which keeps OpenSSL out of the finalize-job child)
/// gives the BCL's bytes: RFC 4231's vectors, and every key and message length around SHA-256's 64-byte block and its
/// 56-byte padding edge.
/// </summary>
public sealed class HmacSha256Tests
{
    private static string Mac(byte[] key, byte[] message)
    {
        var mac = new byte[HmacSha256.HashSizeInBytes];
        HmacSha256.HashData(key, message, mac);
        return Convert.ToHexStringLower(mac);
    }

    [Fact]
    public void Rfc4231Vectors()
    {
        // Test case 2: a key shorter than the block.
        Assert.Equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            Mac(Encoding.ASCII.GetBytes("Jefe"), Encoding.ASCII.GetBytes("what do ya want for nothing?")));
        // Test case 6: a 131-byte key, hashed first.
        Assert.Equal("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            Mac(Enumerable.Repeat((byte)0xaa, 131).ToArray(), Encoding.ASCII.GetBytes("Test Using Larger Than Block-Size Key - Hash Key First")));
    }

    [Fact]
    public void SameBytesAsTheBclForEveryLengthAroundTheBlock()
    {
        var random = new Random(20261203);
        foreach (int keyLength in new[] { 0, 1, 32, 55, 56, 63, 64, 65, 128, 131 })
            for (int messageLength = 0; messageLength <= 200; messageLength++)
            {
                var key = new byte[keyLength];
                var message = new byte[messageLength];
                random.NextBytes(key);
                random.NextBytes(message);
                Assert.Equal(Convert.ToHexStringLower(HMACSHA256.HashData(key, message)), Mac(key, message));
            }
    }

    [Fact]
    public void Sha256OfAMillionAs()
    {
        // FIPS 180-2's long vector: many blocks through one state.
        var hash = new byte[32];
        HmacSha256.Sha256(Enumerable.Repeat((byte)'a', 1_000_000).ToArray(), hash);
        Assert.Equal("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", Convert.ToHexStringLower(hash));
    }
}
