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
        guest.Send(DhcpMessages.Build(1, xid: 0x1234_5678, requested: 0));
        var offer = guest.WaitFor(f => f.IsUdp && f.DestinationPort == 68);
        var offered = DhcpMessages.Read(offer.Data);
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

        guest.Send(DhcpMessages.Build(3, xid: 0x1234_5679, requested: Packets.Guest, broadcast: true));
        var ack = guest.WaitFor(f => f.IsUdp && f.DestinationPort == 68);
        var acked = DhcpMessages.Read(ack.Data);
        Assert.Equal(5, acked[53][0]);
        Assert.Equal(Packets.Guest, BinaryPrimitives.ReadUInt32BigEndian(ack.Data.AsSpan(16)));
        Assert.Equal(Packets.Gateway, BinaryPrimitives.ReadUInt32BigEndian(acked[3]));
        Assert.Equal(Packets.Dns, BinaryPrimitives.ReadUInt32BigEndian(acked[6]));
        // The broadcast flag asks for a broadcast reply.
        Assert.Equal(MacAddress.Broadcast, ack.Destination);
        Assert.Equal(0xffff_ffffu, ack.IpDestination);

        guest.Send(DhcpMessages.Build(3, xid: 0x1234_567a, requested: 0x0a00_0299));
        var nak = guest.WaitFor(f => f.IsUdp && f.DestinationPort == 68);
        Assert.Equal(6, DhcpMessages.Read(nak.Data)[53][0]);
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
}
