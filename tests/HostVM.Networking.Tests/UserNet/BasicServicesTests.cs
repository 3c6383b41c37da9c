using System.Buffers.Binary;

namespace HostVM.Networking.Tests.UserNet;

public class BasicServicesTests
{
    [Fact]
    public void ArpIsAnsweredForGatewayAndDnsOnly()
    {
        using var guest = new FakeGuest();
        guest.Send(Packets.ArpRequest(Packets.Guest, Packets.Gateway));
        var reply = guest.WaitFor(f => f.EtherType == Packets.EtherArp);
        Assert.Equal(Packets.GuestMac, reply.Destination);
        Assert.Equal(Packets.GatewayMac, reply.Source);
        Assert.Equal(2, BinaryPrimitives.ReadUInt16BigEndian(reply.L3Payload.AsSpan(6)));
        Assert.Equal(Packets.GatewayMac, MacAddress.FromBytes(reply.L3Payload.AsSpan(8)));
        Assert.Equal(Packets.Gateway, BinaryPrimitives.ReadUInt32BigEndian(reply.L3Payload.AsSpan(14)));
        Assert.Equal(Packets.GuestMac, MacAddress.FromBytes(reply.L3Payload.AsSpan(18)));
        Assert.Equal(Packets.Guest, BinaryPrimitives.ReadUInt32BigEndian(reply.L3Payload.AsSpan(24)));

        guest.Send(Packets.ArpRequest(Packets.Guest, Packets.Dns));
        var dns = guest.WaitFor(f => f.EtherType == Packets.EtherArp);
        Assert.Equal(Packets.Dns, BinaryPrimitives.ReadUInt32BigEndian(dns.L3Payload.AsSpan(14)));

        guest.Send(Packets.ArpRequest(Packets.Guest, 0x0a00_0263));
        Assert.Null(guest.TryTake(100));
    }

    [Fact]
    public void DhcpGivesTheGuestItsAddressRouterAndDns()
    {
        using var guest = new FakeGuest();
        guest.Send(Dhcp(1, xid: 0x1234_5678, requested: 0));
        var offer = guest.WaitFor(f => f.IsUdp && f.DestinationPort == 68);
        var offered = ReadDhcp(offer.Data);
        Assert.Equal(0x1234_5678u, BinaryPrimitives.ReadUInt32BigEndian(offer.Data.AsSpan(4)));
        Assert.Equal(Packets.Guest, BinaryPrimitives.ReadUInt32BigEndian(offer.Data.AsSpan(16)));
        Assert.Equal(2, offered[53][0]);
        Assert.Equal(Packets.Gateway, BinaryPrimitives.ReadUInt32BigEndian(offered[54]));
        Assert.Equal(0xffff_ff00u, BinaryPrimitives.ReadUInt32BigEndian(offered[1]));
        Assert.Equal(Packets.Gateway, BinaryPrimitives.ReadUInt32BigEndian(offered[3]));
        Assert.Equal(Packets.Dns, BinaryPrimitives.ReadUInt32BigEndian(offered[6]));
        Assert.True(BinaryPrimitives.ReadUInt32BigEndian(offered[51]) >= 60);
        Assert.Equal(67, offer.SourcePort);
        Assert.Equal(Packets.Gateway, offer.IpSource);
        // No broadcast flag: unicast to the offered address at the client's MAC, as busybox udhcpc expects.
        Assert.Equal(Packets.GuestMac, offer.Destination);
        Assert.Equal(Packets.Guest, offer.IpDestination);

        guest.Send(Dhcp(3, xid: 0x1234_5679, requested: Packets.Guest, broadcast: true));
        var ack = guest.WaitFor(f => f.IsUdp && f.DestinationPort == 68);
        var acked = ReadDhcp(ack.Data);
        Assert.Equal(5, acked[53][0]);
        Assert.Equal(Packets.Guest, BinaryPrimitives.ReadUInt32BigEndian(ack.Data.AsSpan(16)));
        Assert.Equal(Packets.Gateway, BinaryPrimitives.ReadUInt32BigEndian(acked[3]));
        Assert.Equal(Packets.Dns, BinaryPrimitives.ReadUInt32BigEndian(acked[6]));
        // The broadcast flag asks for a broadcast reply.
        Assert.Equal(MacAddress.Broadcast, ack.Destination);
        Assert.Equal(0xffff_ffffu, ack.IpDestination);

        guest.Send(Dhcp(3, xid: 0x1234_567a, requested: 0x0a00_0299));
        var nak = guest.WaitFor(f => f.IsUdp && f.DestinationPort == 68);
        Assert.Equal(6, ReadDhcp(nak.Data)[53][0]);
    }

    [Fact]
    public void PingToTheGatewayIsAnswered()
    {
        using var guest = new FakeGuest();
        var echo = new byte[64];
        echo[0] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(4), 0x4242);
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(6), 7);
        for (int i = 8; i < echo.Length; i++)
        {
            echo[i] = (byte)i;
        }

        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(2), Packets.Checksum(echo));
        guest.Send(Packets.IpFrame(Packets.Guest, Packets.Gateway, 1, echo));
        var reply = guest.WaitFor(f => f.Protocol == 1);
        Assert.Equal(Packets.Gateway, reply.IpSource);
        Assert.Equal(Packets.Guest, reply.IpDestination);
        Assert.Equal(0, reply.Data[0]);
        Assert.Equal(echo.AsSpan(4).ToArray(), reply.Data.AsSpan(4).ToArray());
        Assert.True(SpinWait.SpinUntil(() => guest.Network.Statistics.FramesToGuest >= 1, 5000));
        Assert.True(guest.Network.Statistics.FramesFromGuest >= 1);
    }

    private static byte[] Dhcp(byte type, uint xid, uint requested, bool broadcast = false)
    {
        var message = new byte[300];
        message[0] = 1;
        message[1] = 1;
        message[2] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), xid);
        if (broadcast)
        {
            message[10] = 0x80;
        }

        Packets.GuestMac.CopyTo(message.AsSpan(28));
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(236), 0x6382_5363);
        int o = 240;
        message[o++] = 53;
        message[o++] = 1;
        message[o++] = type;
        if (requested != 0)
        {
            message[o++] = 50;
            message[o++] = 4;
            BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(o), requested);
            o += 4;
        }

        message[o++] = 55;
        message[o++] = 3;
        message[o++] = 1;
        message[o++] = 3;
        message[o++] = 6;
        message[o] = 255;
        return Packets.Udp(0, 68, 0xffff_ffff, 67, message);
    }

    private static Dictionary<byte, byte[]> ReadDhcp(byte[] message)
    {
        Assert.Equal(2, message[0]);
        Assert.Equal(0x6382_5363u, BinaryPrimitives.ReadUInt32BigEndian(message.AsSpan(236)));
        var options = new Dictionary<byte, byte[]>();
        for (int i = 240; i < message.Length && message[i] != 255;)
        {
            if (message[i] == 0)
            {
                i++;
                continue;
            }

            options[message[i]] = message.AsSpan(i + 2, message[i + 1]).ToArray();
            i += 2 + message[i + 1];
        }

        return options;
    }
}
