using System.Buffers.Binary;

namespace HostVM.Networking.UserNet;

/// <summary>
/// The DHCP server (RFC 2131, options from RFC 2132): each client, told apart by its hardware
/// address, gets its own address from the pool (see <see cref="DhcpLeaseTable"/>) with the gateway
/// as router and the DNS address as name server.
/// </summary>
internal sealed class DhcpServer
{
    public const ushort ServerPort = 67;
    private const ushort ClientPort = 68;
    private const int FixedLength = 236;
    private const uint MagicCookie = 0x6382_5363;
    private const byte Discover = 1;
    private const byte Offer = 2;
    private const byte Request = 3;
    private const byte Ack = 5;
    private const byte Nak = 6;
    private const byte Release = 7;
    private const byte Inform = 8;
    private const byte OptionPad = 0;
    private const byte OptionSubnetMask = 1;
    private const byte OptionRouter = 3;
    private const byte OptionDns = 6;
    private const byte OptionRequestedAddress = 50;
    private const byte OptionLeaseTime = 51;
    private const byte OptionMessageType = 53;
    private const byte OptionServerId = 54;
    private const byte OptionEnd = 255;

    private readonly UserNetwork network;

    public DhcpServer(UserNetwork network)
    {
        this.network = network;
        Leases = new DhcpLeaseTable(network.GuestAddress, network.LastGuestAddress, network.IsAvailableTo);
        LeaseSeconds = (uint)Math.Clamp(network.Options.DhcpLeaseTime.TotalSeconds, 60, uint.MaxValue - 1);
    }

    public DhcpLeaseTable Leases { get; }

    /// <summary>The lease time given to clients, in whole seconds as DHCP carries it.</summary>
    private uint LeaseSeconds { get; }

    /// <summary>
    /// Handles a datagram to port 67; <paramref name="destination"/> is its IP destination and
    /// <paramref name="sender"/> the frame's source MAC: a client asks for itself only (its chaddr
    /// must be that MAC), so one guest can neither drain the pool under made-up MACs nor release
    /// another guest's lease.
    /// </summary>
    public bool Handle(uint destination, ReadOnlySpan<byte> message, MacAddress sender)
    {
        if ((destination != Ipv4.Broadcast && destination != network.GatewayAddress) ||
            message.Length < FixedLength + 4 ||
            message[0] != 1 || message[1] != 1 || message[2] != 6 ||
            BinaryPrimitives.ReadUInt32BigEndian(message[FixedLength..]) != MagicCookie)
        {
            return false;
        }

        byte type = 0;
        uint requested = 0;
        uint serverId = 0;
        var options = message[(FixedLength + 4)..];
        for (int i = 0; i < options.Length;)
        {
            byte code = options[i];
            if (code == OptionEnd)
            {
                break;
            }

            if (code == OptionPad)
            {
                i++;
                continue;
            }

            if (i + 1 >= options.Length || i + 2 + options[i + 1] > options.Length)
            {
                break;
            }

            var value = options.Slice(i + 2, options[i + 1]);
            switch (code)
            {
                case OptionMessageType when value.Length == 1:
                    type = value[0];
                    break;
                case OptionRequestedAddress when value.Length == 4:
                    requested = BinaryPrimitives.ReadUInt32BigEndian(value);
                    break;
                case OptionServerId when value.Length == 4:
                    serverId = BinaryPrimitives.ReadUInt32BigEndian(value);
                    break;
            }

            i += 2 + value.Length;
        }

        uint clientAddress = BinaryPrimitives.ReadUInt32BigEndian(message[12..]);
        var clientMac = MacAddress.FromBytes(message[28..]);
        if (clientMac.IsMulticast || clientMac == network.GatewayMac || clientMac != sender)
        {
            return false;
        }

        long now = Environment.TickCount64;
        switch (type)
        {
            case Discover:
                // An exhausted pool makes no offer (the table counts it): the client keeps asking.
                if (Leases.Offer(clientMac, now) is { } offered)
                {
                    Reply(message, Offer, offered.Address);
                }

                return true;
            case Request:
                if (serverId != 0 && serverId != network.GatewayAddress)
                {
                    // The client chose another server's offer.
                    return true;
                }

                var bound = Leases.Request(clientMac, requested != 0 ? requested : clientAddress, now, LeaseSeconds * 1000L);
                Reply(message, bound is null ? Nak : Ack, bound?.Address ?? 0);
                return true;
            case Inform:
                Reply(message, Ack, 0);
                return true;
            case Release:
                Leases.Release(clientMac, clientAddress, now);
                return true;
            default:
                // Decline needs no answer.
                return true;
        }
    }

    private void Reply(ReadOnlySpan<byte> request, byte type, uint yourAddress)
    {
        const int minimumBootpLength = 300;
        bool broadcastFlag = (BinaryPrimitives.ReadUInt16BigEndian(request[10..]) & 0x8000) != 0;
        uint clientAddress = BinaryPrimitives.ReadUInt32BigEndian(request[12..]);
        var clientMac = MacAddress.FromBytes(request[28..]);

        byte[] frame = UserNetwork.RentFrame();
        var udp = frame.AsSpan(UserNetwork.TransportOffset);
        var reply = udp[8..];
        reply[..minimumBootpLength].Clear();
        reply[0] = 2;
        reply[1] = 1;
        reply[2] = 6;
        request.Slice(4, 4).CopyTo(reply[4..]);
        request.Slice(10, 2).CopyTo(reply[10..]);
        if (type != Nak)
        {
            BinaryPrimitives.WriteUInt32BigEndian(reply[12..], clientAddress);
            BinaryPrimitives.WriteUInt32BigEndian(reply[16..], yourAddress);
            BinaryPrimitives.WriteUInt32BigEndian(reply[20..], network.GatewayAddress);
        }

        request.Slice(28, 16).CopyTo(reply[28..]);
        BinaryPrimitives.WriteUInt32BigEndian(reply[FixedLength..], MagicCookie);
        int o = FixedLength + 4;
        o = Option(reply, o, OptionMessageType, [type]);
        o = OptionAddress(reply, o, OptionServerId, network.GatewayAddress);
        if (type != Nak)
        {
            if (type != Ack || yourAddress != 0)
            {
                Span<byte> lease = stackalloc byte[4];
                BinaryPrimitives.WriteUInt32BigEndian(lease, LeaseSeconds);
                o = Option(reply, o, OptionLeaseTime, lease);
            }

            o = OptionAddress(reply, o, OptionSubnetMask, network.SubnetMask);
            o = OptionAddress(reply, o, OptionRouter, network.GatewayAddress);
            o = OptionAddress(reply, o, OptionDns, network.DnsAddress);
        }

        reply[o++] = OptionEnd;
        int length = Math.Max(o, minimumBootpLength);

        // RFC 2131 4.1: a configured client gets unicast; otherwise broadcast if it asked (it cannot
        // take unicast before it has an address), else unicast to the offered address at its MAC.
        uint destination;
        MacAddress destinationMac;
        if (type == Nak || broadcastFlag || (clientAddress == 0 && yourAddress == 0))
        {
            destination = Ipv4.Broadcast;
            destinationMac = MacAddress.Broadcast;
        }
        else
        {
            destination = clientAddress != 0 ? clientAddress : yourAddress;
            destinationMac = clientMac;
        }

        var datagram = udp[..(8 + length)];
        BinaryPrimitives.WriteUInt16BigEndian(datagram, ServerPort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[2..], ClientPort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[4..], (ushort)datagram.Length);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[6..], 0);
        ushort checksum = InternetChecksum.ComputeTransport(network.GatewayAddress, destination, Ipv4Packet.ProtocolUdp, datagram);
        BinaryPrimitives.WriteUInt16BigEndian(datagram[6..], checksum == 0 ? (ushort)0xffff : checksum);
        network.EnqueueIpv4(frame, destinationMac, network.GatewayAddress, destination, Ipv4Packet.ProtocolUdp, datagram.Length);
    }

    private static int Option(Span<byte> reply, int offset, byte code, ReadOnlySpan<byte> value)
    {
        reply[offset] = code;
        reply[offset + 1] = (byte)value.Length;
        value.CopyTo(reply[(offset + 2)..]);
        return offset + 2 + value.Length;
    }

    private static int OptionAddress(Span<byte> reply, int offset, byte code, uint address)
    {
        Span<byte> value = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(value, address);
        return Option(reply, offset, code, value);
    }
}
