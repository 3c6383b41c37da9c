using System.Buffers.Binary;

namespace HostVM.Networking.Switch;

/// <summary>
/// What a guest may put on a switch that other guests share: frames from its NIC's own MAC only (a
/// guest cannot take another VM's or the NAT gateway's address and draw their traffic to itself, and
/// with one MAC per port it cannot overflow the switches' MAC tables into flooding), ARP that speaks
/// for that MAC only, and no DHCP server replies (a guest cannot hand its neighbours a false gateway).
/// The VMM applies it before a frame leaves for the switch, as libvirt's no-mac-spoofing and
/// no-arp-spoofing filters do on a bridge.
/// </summary>
public static class GuestFrameFilter
{
    private const int EthernetHeader = 14;
    private const ushort EtherArp = 0x0806;
    private const ushort EtherIpv4 = 0x0800;
    private const byte ProtocolUdp = 17;
    private const ushort DhcpServerPort = 67;

    /// <summary>Why a frame from the guest with MAC <paramref name="mac"/> may not leave, or null when it may.</summary>
    public static string? Refusal(ReadOnlySpan<byte> frame, MacAddress mac)
    {
        if (frame.Length < EthernetHeader)
        {
            return "shorter than an Ethernet header";
        }

        if (MacAddress.FromBytes(frame[6..]) != mac)
        {
            return "its source MAC is not the NIC's";
        }

        ushort type = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        var body = frame[EthernetHeader..];
        if (type == EtherArp)
        {
            // Ethernet/IPv4 ARP: the sender's hardware address at offset 8 must be the NIC's too.
            return body.Length < 28 || MacAddress.FromBytes(body[8..]) != mac ? "ARP for another MAC" : null;
        }

        if (type == EtherIpv4 && body.Length >= 20 && body[9] == ProtocolUdp && (body[6] & 0x1f) == 0 && body[7] == 0)
        {
            int header = (body[0] & 0xf) * 4;
            if (header >= 20 && body.Length >= header + 4 && BinaryPrimitives.ReadUInt16BigEndian(body[header..]) == DhcpServerPort)
            {
                return "a DHCP server reply";
            }
        }

        return null;
    }
}
