using System.Net;
using System.Net.Sockets;

namespace HostVM.Networking.UserNet;

/// <summary>A UDP host forward: datagrams to a host port go to the guest, and its replies come back to the sender.</summary>
internal sealed class UdpForwardListener : IForwardListener
{
    private const int BufferSize = 65536;
    private readonly UserNetwork _network;
    private readonly Socket _socket;

    public UdpForwardListener(UserNetwork network, HostForward forward)
    {
        forward.EnsureValid();
        _network = network;
        network.CheckForwardTarget(forward);
        _socket = new Socket(forward.HostAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            _socket.Bind(new IPEndPoint(forward.HostAddress, forward.HostPort));
            // Replies are sent from the NIC's thread: a full socket buffer must drop, not block.
            _socket.Blocking = false;
        }
        catch (SocketException ex)
        {
            _socket.Dispose();
            throw new InvalidOperationException(
                $"Host forward '{forward}': cannot bind {forward.HostAddress}:{forward.HostPort} ({ex.SocketErrorCode}). Choose a free port, or 0 for any.", ex);
        }

        Bound = forward with { HostPort = ((IPEndPoint)_socket.LocalEndPoint!).Port };
        _ = ReceiveLoopAsync();
    }

    public HostForward Bound { get; }

    /// <summary>Sends the guest's reply to the host client; UDP may drop it if the socket is full.</summary>
    public void SendTo(ReadOnlySpan<byte> data, IPEndPoint client)
    {
        try
        {
            _socket.SendTo(data, SocketFlags.None, client);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Dropped, as UDP may.
        }
    }

    public void Dispose() => _socket.Dispose();

    private async Task ReceiveLoopAsync()
    {
        byte[] buffer = new byte[BufferSize];
        EndPoint any = new IPEndPoint(IPAddress.Any, 0);
        while (true)
        {
            SocketReceiveFromResult result;
            try
            {
                result = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, any).ConfigureAwait(false);
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionRefused or SocketError.ConnectionReset or SocketError.MessageSize)
            {
                continue;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                return;
            }

            if (result.RemoteEndPoint is IPEndPoint client)
            {
                _network.ForwardUdpFromHost(this, client, buffer.AsSpan(0, result.ReceivedBytes));
            }
        }
    }
}
