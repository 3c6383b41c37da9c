using System.Net;
using System.Net.Sockets;

namespace HostVM.Networking.UserNet;

/// <summary>One guest UDP flow and the connected host socket that carries it.</summary>
internal sealed class UdpNatFlow : IDisposable
{
    // The largest datagram that fits one frame to the guest (no fragmentation); one byte more
    // lets an oversized reply be seen as such and dropped.
    private const int ReceiveBufferSize = IPacketPort.MaxFrameSize - UserNetwork.TransportOffset - 8 + 1;

    private readonly UserNetwork _network;
    private readonly Socket _socket;
    private bool _disposed;

    private UdpNatFlow(UserNetwork network, FlowKey key, Socket socket)
    {
        _network = network;
        Key = key;
        _socket = socket;
        LastUsed = Environment.TickCount64;
    }

    public FlowKey Key { get; }

    public long LastUsed { get; private set; }

    /// <summary>Opens the host socket; null when the host refuses (e.g. no route).</summary>
    public static UdpNatFlow? TryOpen(UserNetwork network, FlowKey key, IPEndPoint target)
    {
        Socket? socket = null;
        try
        {
            // Out of file descriptors or buffers, the host refuses the socket itself: the flow fails, nothing else.
            socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);

            // Send() runs on the NIC's thread: a full socket buffer must drop, not block.
            socket.Blocking = false;
            socket.Connect(target);
        }
        catch (SocketException)
        {
            socket?.Dispose();
            return null;
        }

        var flow = new UdpNatFlow(network, key, socket);
        _ = flow.ReceiveLoopAsync();
        return flow;
    }

    public bool Send(ReadOnlySpan<byte> data)
    {
        LastUsed = Environment.TickCount64;
        try
        {
            _socket.Send(data);
            return true;
        }
        catch (SocketException)
        {
            // Would block, or an ICMP error from an earlier datagram: UDP may lose datagrams.
            return false;
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _socket.Dispose();
    }

    private async Task ReceiveLoopAsync()
    {
        // Started with the network's lock held: leave this thread first, so a socket operation that
        // completes synchronously cannot re-enter the lock and deliver frames from under it.
        await Task.Yield();
        byte[] buffer = new byte[ReceiveBufferSize];
        while (true)
        {
            int received;
            try
            {
                received = await _socket.ReceiveAsync(buffer, SocketFlags.None).ConfigureAwait(false);
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionRefused or SocketError.MessageSize or SocketError.ConnectionReset)
            {
                continue;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return;
            }

            lock (_network.Gate)
            {
                if (_disposed || _network.IsDisposed)
                {
                    return;
                }

                LastUsed = Environment.TickCount64;
                _network.SendUdpToGuest(Key.RemoteAddress, Key.RemotePort, Key.GuestAddress, Key.GuestPort, buffer.AsSpan(0, received));
            }

            _network.Flush();
        }
    }
}
