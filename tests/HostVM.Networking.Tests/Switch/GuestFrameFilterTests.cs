using System.Buffers.Binary;
using HostVM.Networking.Switch;
using HostVM.Networking.Tests.UserNet;

namespace HostVM.Networking.Tests.Switch;

/// <summary>What a guest may put on a shared switch: its own MAC, ARP for itself, no DHCP server.</summary>
public class GuestFrameFilterTests
{
    private static readonly MacAddress Own = Packets.GuestMac;
    private static readonly MacAddress Other = MacAddress.Parse("52:54:00:00:00:77");

    [Fact]
    public void FramesFromTheNicsOwnMacPass()
    {
        Assert.Null(GuestFrameFilter.Refusal(Packets.IpFrame(Packets.Guest, Packets.Gateway, 253, [1, 2, 3, 4], Own), Own));
        Assert.Null(GuestFrameFilter.Refusal(Packets.ArpRequest(Packets.Guest, Packets.Gateway, Own), Own));
        Assert.Null(GuestFrameFilter.Refusal(DhcpMessages.Build(DhcpMessages.Discover, 1, 0), Own)); // a client's request
    }

    [Fact]
    public void AnotherMacOrTheGatewaysIsRefused()
    {
        Assert.Equal("its source MAC is not the NIC's", GuestFrameFilter.Refusal(Packets.IpFrame(Packets.Guest, Packets.Gateway, 253, [1], Other), Own));
        Assert.NotNull(GuestFrameFilter.Refusal(Packets.IpFrame(Packets.Gateway, Packets.Guest, 253, [1], Packets.GatewayMac), Own));
        Assert.NotNull(GuestFrameFilter.Refusal(new byte[13], Own));
    }

    [Fact]
    public void ArpSpeakingForAnotherMacIsRefused()
    {
        byte[] arp = Packets.ArpRequest(Packets.Guest, Packets.Gateway, Own);
        Packets.GatewayMac.CopyTo(arp.AsSpan(14 + 8)); // the ARP sender hardware address
        Assert.Equal("ARP for another MAC", GuestFrameFilter.Refusal(arp, Own));
        Assert.NotNull(GuestFrameFilter.Refusal(arp.AsSpan(0, 30), Own)); // too short to say
    }

    [Fact]
    public void ADhcpServerReplyFromAGuestIsRefused()
    {
        byte[] offer = Packets.Udp(Packets.Guest, 67, 0xffff_ffff, 68, new byte[300], Own);
        Assert.Equal("a DHCP server reply", GuestFrameFilter.Refusal(offer, Own));
        BinaryPrimitives.WriteUInt16BigEndian(offer.AsSpan(14 + 20), 5353);
        Assert.Null(GuestFrameFilter.Refusal(offer, Own));
    }
}
