using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace HostVM.Storage.Tests.Nbd;

/// <summary>
/// A fake NBD server for tests: a correct fixed newstyle handshake (structured replies, <c>base:allocation</c> as
/// context 7, a 1 MiB export) unless <see cref="Handshake"/> says otherwise, then whatever <see cref="Respond"/> sends
/// for each request. It serves every connection the same way, so a client that reconnects meets the same server.
/// </summary>
internal sealed class HostileNbdServer : IAsyncDisposable
{
    public const uint ContextId = 7;
    public const long Size = 1 << 20;

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public HostileNbdServer(Func<Stream, Request, Task> respond, string? handshake = null)
    {
        Respond = respond;
        Handshake = handshake;
        _listener.Start();
        _loop = Task.Run(AcceptAsync);
    }

    /// <summary>What to break during negotiation: "size" (an absurd export size), "option-length" (a huge option reply).</summary>
    public string? Handshake { get; }

    public Func<Stream, Request, Task> Respond { get; }

    public string Uri => $"nbd://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/disk";

    private int _connections;

    /// <summary>Connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    public static byte[] Chunk(ulong cookie, ushort flags, ushort type, uint length, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[20 + payload.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, 0x668e33ef);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(4), flags);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(6), type);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), cookie);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(16), length);
        payload.CopyTo(bytes.AsSpan(20));
        return bytes;
    }

    /// <summary>An OFFSET_DATA chunk for <paramref name="bytes"/> bytes at <paramref name="offset"/>.</summary>
    public static byte[] Data(ulong cookie, bool done, long offset, int bytes)
    {
        var payload = new byte[8 + bytes];
        BinaryPrimitives.WriteUInt64BigEndian(payload, (ulong)offset);
        payload.AsSpan(8).Fill(0xab);
        return Chunk(cookie, done ? (ushort)1 : (ushort)0, 1, (uint)payload.Length, payload);
    }

    public static byte[] Simple(ulong cookie, uint error)
    {
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, 0x67446698);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), error);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), cookie);
        return bytes;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _loop;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            Interlocked.Increment(ref _connections);
            _ = Task.Run(async () =>
            {
                using (client)
                {
                    try
                    {
                        await ServeAsync(client.GetStream());
                    }
                    catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
                    {
                        // The client hung up, as it should after a bad reply.
                    }
                }
            });
        }
    }

    private async Task ServeAsync(NetworkStream stream)
    {
        var token = _stop.Token;
        var greeting = new byte[18];
        BinaryPrimitives.WriteUInt64BigEndian(greeting, 0x4e42444d41474943);
        BinaryPrimitives.WriteUInt64BigEndian(greeting.AsSpan(8), 0x49484156454F5054);
        BinaryPrimitives.WriteUInt16BigEndian(greeting.AsSpan(16), 3);
        await stream.WriteAsync(greeting, token);
        await stream.ReadExactlyAsync(new byte[4], token);
        while (true)
        {
            var header = new byte[16];
            await stream.ReadExactlyAsync(header, token);
            uint option = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(8));
            var data = new byte[BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12))];
            await stream.ReadExactlyAsync(data, token);
            switch (option)
            {
                case 8: // STRUCTURED_REPLY
                    await OptionReplyAsync(stream, option, 1, []);
                    break;
                case 10: // SET_META_CONTEXT
                    byte[] name = Encoding.UTF8.GetBytes("base:allocation");
                    var context = new byte[4 + name.Length];
                    BinaryPrimitives.WriteUInt32BigEndian(context, ContextId);
                    name.CopyTo(context, 4);
                    await OptionReplyAsync(stream, option, 4, context);
                    await OptionReplyAsync(stream, option, 1, []);
                    break;
                case 7: // GO
                    if (Handshake == "option-length")
                    {
                        await OptionReplyAsync(stream, option, 3, [], announcedLength: 1u << 30);
                        return;
                    }

                    var info = new byte[12];
                    BinaryPrimitives.WriteUInt64BigEndian(info.AsSpan(2), Handshake == "size" ? 1UL << 63 : (ulong)Size);
                    BinaryPrimitives.WriteUInt16BigEndian(info.AsSpan(10), 1 | 4); // HAS_FLAGS, SEND_FLUSH
                    await OptionReplyAsync(stream, option, 3, info);
                    await OptionReplyAsync(stream, option, 1, []);
                    await TransmitAsync(stream);
                    return;
                default:
                    await OptionReplyAsync(stream, option, (1u << 31) + 1, []);
                    break;
            }
        }
    }

    private async Task TransmitAsync(NetworkStream stream)
    {
        while (true)
        {
            var header = new byte[28];
            await stream.ReadExactlyAsync(header, _stop.Token);
            var request = new Request(
                BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(6)),
                BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(8)),
                (long)BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(16)),
                BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(24)));
            if (request.Type == 2)
            {
                return;
            }

            if (request.Type == 1)
            {
                await stream.ReadExactlyAsync(new byte[request.Length], _stop.Token);
            }

            await Respond(stream, request);
        }
    }

    private async Task OptionReplyAsync(Stream stream, uint option, uint type, byte[] data, uint? announcedLength = null)
    {
        var header = new byte[20];
        BinaryPrimitives.WriteUInt64BigEndian(header, 0x0003e889045565a9);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(8), option);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(12), type);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(16), announcedLength ?? (uint)data.Length);
        await stream.WriteAsync(header, _stop.Token);
        await stream.WriteAsync(data, _stop.Token);
    }

    internal readonly record struct Request(ushort Type, ulong Cookie, long Offset, uint Length);
}
