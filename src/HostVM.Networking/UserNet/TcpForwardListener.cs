using System.Net;
using System.Net.Sockets;

namespace HostVM.Networking.UserNet;

/// <summary>A TCP host forward: listens on a host port and hands each accepted client to the NAT as a connection into the guest.</summary>
internal sealed class TcpForwardListener : IForwardListener
{
    private readonly UserNetwork _network;
    private readonly Socket _listener;

    public TcpForwardListener(UserNetwork network, HostForward forward)
    {
        forward.EnsureValid();
        _network = network;
        network.CheckForwardTarget(forward);
        _listener = new Socket(forward.HostAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _listener.Bind(new IPEndPoint(forward.HostAddress, forward.HostPort));
            _listener.Listen(64);
        }
        catch (SocketException ex)
        {
            _listener.Dispose();
            throw new InvalidOperationException(
                $"Host forward '{forward}': cannot listen on {forward.HostAddress}:{forward.HostPort} ({ex.SocketErrorCode}). Choose a free port, or 0 for any.", ex);
        }

        Bound = forward with { HostPort = ((IPEndPoint)_listener.LocalEndPoint!).Port };
        _ = AcceptLoopAsync();
    }

    /// <summary>The forward with its actual host port.</summary>
    public HostForward Bound { get; }

    public void Dispose() => _listener.Dispose();

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync().ConfigureAwait(false);
            }
            catch (SocketException ex) when (ex.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
            {
                continue;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return;
            }

            client.NoDelay = true;
            _network.AcceptForward(client, Bound);
        }
    }
}
