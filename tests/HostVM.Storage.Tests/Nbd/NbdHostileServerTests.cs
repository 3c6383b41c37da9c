using System.Buffers.Binary;
using HostVM.Storage.Nbd;

namespace HostVM.Storage.Tests.Nbd;

/// <summary>
/// A server that lies: every malformed reply is an <see cref="IOException"/> for that request, no byte lands outside the
/// caller's buffer, and nothing hangs (each test is bounded by a deadline that fails it rather than blocking the run).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class NbdHostileServerTests
{
    private const long At = 4096;
    private const int Length = 4096;
    private static readonly TimeSpan NoHang = TimeSpan.FromSeconds(30);
    private static readonly NbdClientOptions Quick = new() { IoTimeout = TimeSpan.FromSeconds(1), Retries = 1, FirstRetryDelay = TimeSpan.FromMilliseconds(50) };

    [Theory]
    [InlineData("wrong-cookie", true)]
    [InlineData("bad-magic", true)]
    [InlineData("oversize-chunk", true)]
    [InlineData("outside", true)]
    [InlineData("overlap", true)]
    [InlineData("short", true)]
    [InlineData("empty-hole", true)]
    [InlineData("huge-error", true)]
    [InlineData("unknown-type", true)]
    [InlineData("simple-data", true)]
    [InlineData("truncated", false)]
    [InlineData("silent", false)]
    public async Task AMalformedReadReplyIsAnIOExceptionAndNothingLandsOutsideTheBuffer(string lie, bool violation)
    {
        await using var server = new HostileNbdServer((stream, r) => ReadReply(stream, r, lie));
        using var disk = NbdBlockDevice.Open(NbdUri.Parse(server.Uri), readOnly: false, options: Quick);
        var buffer = new byte[3 * Length];
        buffer.AsSpan().Fill(0xee);
        var e = await Assert.ThrowsAnyAsync<IOException>(() => Task.Run(() => disk.Read(At, buffer.AsSpan(Length, Length))).WaitAsync(NoHang, TestContext.Current.CancellationToken));
        Assert.True(e is NbdProtocolException == violation, $"{lie}: {e.GetType().Name}: {e.Message}");
        Assert.All(buffer.AsSpan(0, Length).ToArray(), b => Assert.Equal(0xee, b));
        Assert.All(buffer.AsSpan(2 * Length).ToArray(), b => Assert.Equal(0xee, b));

        // A violation is not retried; a lost connection is, a bounded number of times.
        Assert.Equal(violation ? 1 : 1 + Quick.Retries, server.Connections);
    }

    [Theory]
    [InlineData("zero-length")]
    [InlineData("past-request")]
    [InlineData("other-context")]
    [InlineData("two-chunks")]
    public async Task AMalformedBlockStatusReplyIsAProtocolError(string lie)
    {
        await using var server = new HostileNbdServer((stream, r) => StatusReply(stream, r, lie));
        using var disk = NbdBlockDevice.Open(NbdUri.Parse(server.Uri), readOnly: false, options: Quick);
        Assert.True(disk.ReportsAllocation);
        await Assert.ThrowsAsync<NbdProtocolException>(() => Task.Run(() => disk.MapAllocation(0, 64 * 1024)).WaitAsync(NoHang, TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("size", "absurd")]
    [InlineData("option-length", "bytes long")]
    public async Task AMalformedHandshakeFailsTheOpenWithAClearMessage(string lie, string expected)
    {
        await using var server = new HostileNbdServer((_, _) => Task.CompletedTask, handshake: lie);
        var e = await Assert.ThrowsAsync<BlockDeviceException>(() => Task.Run(() => NbdBlockDevice.Open(NbdUri.Parse(server.Uri), readOnly: false, options: Quick)).WaitAsync(NoHang, TestContext.Current.CancellationToken));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnErrorChunkFailsTheRequestButKeepsTheConnection()
    {
        await using var server = new HostileNbdServer(async (stream, r) =>
        {
            if (r.Type == 0)
            {
                var payload = new byte[6 + 5];
                BinaryPrimitives.WriteUInt32BigEndian(payload, 28);
                BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(4), 5);
                "full!"u8.CopyTo(payload.AsSpan(6));
                await stream.WriteAsync(HostileNbdServer.Chunk(r.Cookie, 1, 0x8001, (uint)payload.Length, payload));
            }
            else
            {
                await stream.WriteAsync(HostileNbdServer.Simple(r.Cookie, 0));
            }
        });
        using var disk = NbdBlockDevice.Open(NbdUri.Parse(server.Uri), readOnly: false, options: Quick);
        var e = Assert.Throws<NbdServerErrorException>(() => disk.Read(0, new byte[512]));
        Assert.Contains("ENOSPC", e.Message, StringComparison.Ordinal);
        Assert.Contains("full!", e.Message, StringComparison.Ordinal);
        disk.Write(0, new byte[512]);
        Assert.Equal(1, server.Connections);
    }

    [Fact]
    public async Task AWriteWhoseConnectionDropsIsSentAgainOnANewOne()
    {
        int writes = 0;
        await using var server = new HostileNbdServer(async (stream, r) =>
        {
            if (r.Type == 1 && Interlocked.Increment(ref writes) == 1)
            {
                stream.Close(); // the payload was taken, the reply never comes: did it land? Sending it again is safe.
                return;
            }

            await stream.WriteAsync(HostileNbdServer.Simple(r.Cookie, 0));
        });
        using var disk = NbdBlockDevice.Open(NbdUri.Parse(server.Uri), readOnly: false, options: Quick);
        await Task.Run(() => disk.Write(At, new byte[Length])).WaitAsync(NoHang, TestContext.Current.CancellationToken);
        Assert.Equal(2, writes);
        Assert.Equal(2, server.Connections);
    }

    private static async Task ReadReply(Stream stream, HostileNbdServer.Request r, string lie)
    {
        byte[] reply = lie switch
        {
            "wrong-cookie" => HostileNbdServer.Data(r.Cookie + 1, true, r.Offset, (int)r.Length),
            "bad-magic" => [0xde, 0xad, 0xbe, 0xef, .. new byte[16]],
            "oversize-chunk" => HostileNbdServer.Data(r.Cookie, true, r.Offset, (int)r.Length + 512),
            "outside" => HostileNbdServer.Data(r.Cookie, true, r.Offset + r.Length, 512),
            "overlap" => [.. HostileNbdServer.Data(r.Cookie, false, r.Offset, (int)r.Length), .. HostileNbdServer.Data(r.Cookie, true, r.Offset, 512)],
            "short" => HostileNbdServer.Data(r.Cookie, true, r.Offset, (int)r.Length / 2),
            "empty-hole" => HostileNbdServer.Chunk(r.Cookie, 1, 2, 12, [.. BitConverter.GetBytes(BinaryPrimitives.ReverseEndianness((ulong)r.Offset)), 0, 0, 0, 0]),
            "huge-error" => HostileNbdServer.Chunk(r.Cookie, 1, 0x8001, 1 << 20, new byte[64]),
            "unknown-type" => HostileNbdServer.Chunk(r.Cookie, 1, 77, 0, []),
            "simple-data" => [.. HostileNbdServer.Simple(r.Cookie, 0), .. new byte[r.Length]],
            "truncated" => HostileNbdServer.Data(r.Cookie, true, r.Offset, (int)r.Length)[..100],
            _ => [],
        };
        await stream.WriteAsync(reply);
        if (lie == "truncated")
        {
            stream.Close();
        }
        else if (lie == "silent")
        {
            await Task.Delay(Timeout.Infinite, TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(20));
        }
    }

    private static async Task StatusReply(Stream stream, HostileNbdServer.Request r, string lie)
    {
        (uint Length, uint Flags)[] extents = lie switch
        {
            "zero-length" => [(4096, 0), (0, 0)],
            "past-request" => [(r.Length, 0), (4096, 3)],
            _ => [(r.Length, 0)],
        };
        var payload = new byte[4 + (8 * extents.Length)];
        BinaryPrimitives.WriteUInt32BigEndian(payload, lie == "other-context" ? HostileNbdServer.ContextId + 1 : HostileNbdServer.ContextId);
        for (int i = 0; i < extents.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(4 + (8 * i)), extents[i].Length);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(8 + (8 * i)), extents[i].Flags);
        }

        byte[] chunk = HostileNbdServer.Chunk(r.Cookie, lie == "two-chunks" ? (ushort)0 : (ushort)1, 5, (uint)payload.Length, payload);
        await stream.WriteAsync(lie == "two-chunks" ? [.. chunk, .. HostileNbdServer.Chunk(r.Cookie, 1, 5, (uint)payload.Length, payload)] : chunk);
    }
}
