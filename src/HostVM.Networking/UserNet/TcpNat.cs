using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace HostVM.Networking.UserNet;

/// <summary>The table of NATed TCP connections: finds the connection for each guest segment, opens new ones, answers strays with RST.</summary>
internal sealed class TcpNat(UserNetwork network) : IDisposable
{
    private const ushort FirstForwardPort = 49152;
    private readonly Dictionary<FlowKey, TcpNatConnection> _connections = [];
    private readonly PerGuestCount _perGuest = new();
    private readonly List<TcpNatConnection> _timerScratch = [];
    private ushort _nextForwardPort = FirstForwardPort;

    public int Count => _connections.Count;

    /// <summary>A segment from the guest whose frames come from <paramref name="guest"/>.</summary>
    public bool Handle(Ipv4Packet ip, MacAddress guest)
    {
        if (!TcpSegment.TryParse(ip.Source, ip.Destination, ip.Payload, out var segment))
        {
            return false;
        }

        network.NeedFastTimer();
        var key = new FlowKey(ip.Source, segment.SourcePort, ip.Destination, segment.DestinationPort);
        bool isConnectionRequest = (segment.Flags & (TcpSegment.Syn | TcpSegment.Ack | TcpSegment.Fin | TcpSegment.Rst)) == TcpSegment.Syn;
        if (_connections.TryGetValue(key, out var connection))
        {
            if (!(isConnectionRequest && connection.IsLingering))
            {
                connection.OnSegment(segment);
                return true;
            }

            // The guest reuses the ports of a connection that has just finished: start afresh.
            connection.Close();
            Forget(key);
        }

        if (segment.Has(TcpSegment.Rst))
        {
            return true;
        }

        uint destination = ip.Destination;
        bool isDns = destination == network.DnsAddress && segment.DestinationPort == 53 && network.DnsServer is not null;
        bool reachable = network.IsGuestAddress(ip.Source) && !Ipv4.IsSpecial(destination) && segment.SourcePort != 0 && segment.DestinationPort != 0 &&
            (destination == network.GatewayAddress || isDns || !network.IsInSubnet(destination));
        if (isConnectionRequest && reachable)
        {
            if (_connections.Count >= network.Options.MaxTcpConnections || _perGuest[guest] >= network.Options.MaxTcpConnectionsPerGuest)
            {
                // The network's or this guest's share of host sockets is taken: refused as a closed port is.
                network.CountFlowRefused();
            }
            else
            {
                // DNS over TCP (for answers too big for UDP) goes to the same name server as DNS over UDP;
                // anything else only where the egress policy lets it (a refusal is an RST, as a closed port).
                IPEndPoint? host = isDns ? network.DnsServer!
                    : network.ResolveEgress(destination, segment.DestinationPort) is { } target ? new IPEndPoint(Ipv4.ToAddress(target), segment.DestinationPort)
                    : null;
                if (host is not null)
                {
                    if (TcpNatConnection.Connect(network, this, key, segment, host) is { } opened)
                    {
                        Track(key, opened, guest);
                        return true;
                    }

                    network.CountFlowRefused(); // the host refused the socket (out of descriptors or buffers)
                }
            }
        }

        if (network.IsGuestAddress(ip.Source))
        {
            SendReset(key, segment);
        }

        return true;
    }

    /// <summary>A host client connected to a forwarded port: open a connection into the guest for it.</summary>
    public void OpenForward(Socket client, uint guestAddress, ushort guestPort)
    {
        network.NeedFastTimer();
        if (_connections.Count >= network.Options.MaxTcpConnections)
        {
            network.CountFlowRefused();
            client.Dispose();
            return;
        }

        for (int attempt = 0; attempt < 65536 - FirstForwardPort; attempt++)
        {
            ushort port = _nextForwardPort;
            _nextForwardPort = port == ushort.MaxValue ? FirstForwardPort : (ushort)(port + 1);
            var key = new FlowKey(guestAddress, guestPort, network.GatewayAddress, port);
            if (!_connections.ContainsKey(key))
            {
                Track(key, TcpNatConnection.Accept(network, this, key, client), owner: null);
                return;
            }
        }

        client.Dispose();
    }

    public void Remove(TcpNatConnection connection) => Forget(connection.Key);

    /// <summary>Whether any connection waits on a retransmission or delayed-ACK deadline.</summary>
    public bool HasDeadlines
    {
        get
        {
            foreach (var connection in _connections.Values)
            {
                if (connection.HasDeadlines)
                {
                    return true;
                }
            }

            return false;
        }
    }

    public void OnTimer(long now)
    {
        _timerScratch.AddRange(_connections.Values);
        foreach (var connection in _timerScratch)
        {
            connection.OnTimer(now);
        }

        _timerScratch.Clear();
    }

    /// <summary>RST for a segment that belongs to no connection (RFC 793 "reset generation").</summary>
    public void SendReset(FlowKey key, TcpSegment segment)
    {
        if (segment.Has(TcpSegment.Ack))
        {
            WriteSegment(network, key, segment.Acknowledgment, 0, TcpSegment.Rst, 0, default, null, 0, 0);
        }
        else
        {
            uint length = (uint)segment.Payload.Length + (segment.Has(TcpSegment.Syn) ? 1u : 0u) + (segment.Has(TcpSegment.Fin) ? 1u : 0u);
            WriteSegment(network, key, 0, segment.Sequence + length, TcpSegment.Rst | TcpSegment.Ack, 0, default, null, 0, 0);
        }
    }

    /// <summary>
    /// Builds one segment from the peer in <paramref name="key"/> to the guest, with
    /// <paramref name="length"/> bytes taken from <paramref name="data"/> at <paramref name="dataOffset"/>.
    /// False when the guest's MAC is not known yet (an ARP request went out instead).
    /// </summary>
    public static bool WriteSegment(
        UserNetwork network, FlowKey key, uint sequence, uint acknowledgment, byte flags, ushort window,
        ReadOnlySpan<byte> options, ByteRing? data, int dataOffset, int length)
    {
        if (!network.TryResolve(key.GuestAddress, out var mac))
        {
            return false;
        }

        byte[] frame = UserNetwork.RentFrame();
        int headerLength = TcpSegment.HeaderLength + options.Length;
        var tcp = frame.AsSpan(UserNetwork.TransportOffset, headerLength + length);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, key.RemotePort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], key.GuestPort);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], sequence);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], acknowledgment);
        tcp[12] = (byte)(headerLength / 4 << 4);
        tcp[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], window);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[16..], 0); // checksum and urgent pointer
        options.CopyTo(tcp[TcpSegment.HeaderLength..]);
        if (length > 0)
        {
            data!.Peek(dataOffset, tcp.Slice(headerLength, length));
        }

        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], InternetChecksum.ComputeTransport(key.RemoteAddress, key.GuestAddress, Ipv4Packet.ProtocolTcp, tcp));
        network.EnqueueIpv4(frame, mac, key.RemoteAddress, key.GuestAddress, Ipv4Packet.ProtocolTcp, tcp.Length);
        return true;
    }

    public void Dispose()
    {
        foreach (var connection in _connections.Values)
        {
            connection.Close();
        }

        _connections.Clear();
        _perGuest.Clear();
    }

    /// <summary>
    /// Adds a connection; one the guest opened counts against <paramref name="owner"/>'s share. A host client's
    /// connection into a guest (a forward) counts only against the network's total: the guest did not ask for it.
    /// </summary>
    private void Track(FlowKey key, TcpNatConnection connection, MacAddress? owner)
    {
        _connections.Add(key, connection);
        if (owner is { } guest)
        {
            _perGuest.Add(key, guest);
        }
    }

    private void Forget(FlowKey key)
    {
        if (_connections.Remove(key))
        {
            _perGuest.Remove(key);
        }
    }
}
