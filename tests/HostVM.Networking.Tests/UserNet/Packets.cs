using System.Buffers.Binary;

namespace HostVM.Networking.Tests.UserNet;

/// <summary>
/// Builds guest frames and checks checksums for the tests, independently of the code under test
/// (a plain word-by-word RFC 1071 sum, so a bug in the product's checksum cannot hide itself).
/// </summary>
internal static class Packets
{
    public const ushort EtherIpv4 = 0x0800;
    public const ushort EtherArp = 0x0806;
    public const byte Fin = 0x01;
    public const byte Syn = 0x02;
    public const byte Rst = 0x04;
    public const byte Psh = 0x08;
    public const byte Ack = 0x10;

    public static readonly MacAddress GuestMac = MacAddress.Parse("52:54:00:12:34:56");
    public static readonly MacAddress GatewayMac = MacAddress.Parse("52:55:0a:00:02:02");
    public const uint Guest = 0x0a00_020f;
    public const uint Gateway = 0x0a00_0202;
    public const uint Dns = 0x0a00_0203;
    public const uint Loopback = 0x7f00_0001;

    public static ushort Checksum(ReadOnlySpan<byte> data, uint initial = 0)
    {
        uint sum = initial;
        for (int i = 0; i < data.Length; i += 2)
        {
            uint word = (uint)data[i] << 8;
            if (i + 1 < data.Length)
            {
                word |= data[i + 1];
            }

            sum += word;
            sum = (sum & 0xffff) + (sum >> 16);
        }

        return (ushort)~sum;
    }

    public static uint Pseudo(uint source, uint destination, byte protocol, int length) =>
        (source >> 16) + (source & 0xffff) + (destination >> 16) + (destination & 0xffff) + protocol + (uint)length;

    public static byte[] Ethernet(MacAddress destination, MacAddress source, ushort type, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[14 + payload.Length];
        destination.CopyTo(frame);
        source.CopyTo(frame.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), type);
        payload.CopyTo(frame.AsSpan(14));
        return frame;
    }

    public static byte[] Ipv4(uint source, uint destination, byte protocol, ReadOnlySpan<byte> payload)
    {
        var packet = new byte[20 + payload.Length];
        packet[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(6), 0x4000);
        packet[8] = 64;
        packet[9] = protocol;
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(12), source);
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(16), destination);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(10), Checksum(packet.AsSpan(0, 20)));
        payload.CopyTo(packet.AsSpan(20));
        return packet;
    }

    /// <summary>An IPv4 packet from a guest (<paramref name="from"/>, by default <see cref="GuestMac"/>) to the gateway's MAC.</summary>
    public static byte[] IpFrame(uint source, uint destination, byte protocol, ReadOnlySpan<byte> payload, MacAddress? from = null) =>
        Ethernet(GatewayMac, from ?? GuestMac, EtherIpv4, Ipv4(source, destination, protocol, payload));

    public static byte[] Tcp(uint source, ushort sourcePort, uint destination, ushort destinationPort, uint seq, uint ack, byte flags, ushort window, ReadOnlySpan<byte> payload, ReadOnlySpan<byte> options = default, MacAddress? from = null)
    {
        int header = 20 + options.Length;
        var segment = new byte[header + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(segment, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(4), seq);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(8), ack);
        segment[12] = (byte)(header / 4 << 4);
        segment[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(14), window);
        options.CopyTo(segment.AsSpan(20));
        payload.CopyTo(segment.AsSpan(header));
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(16), Checksum(segment, Pseudo(source, destination, 6, segment.Length)));
        return IpFrame(source, destination, 6, segment, from);
    }

    public static byte[] Udp(uint source, ushort sourcePort, uint destination, ushort destinationPort, ReadOnlySpan<byte> payload, MacAddress? from = null)
    {
        var datagram = new byte[8 + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(datagram, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(2), destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(4), (ushort)datagram.Length);
        payload.CopyTo(datagram.AsSpan(8));
        ushort checksum = Checksum(datagram, Pseudo(source, destination, 17, datagram.Length));
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(6), checksum == 0 ? (ushort)0xffff : checksum);
        var frame = Ethernet(destination == 0xffff_ffff ? MacAddress.Broadcast : GatewayMac, from ?? GuestMac, EtherIpv4, Ipv4(source, destination, 17, datagram));
        return frame;
    }

    public static byte[] ArpRequest(uint senderIp, uint targetIp, MacAddress? from = null)
    {
        var sender = from ?? GuestMac;
        var arp = new byte[28];
        BinaryPrimitives.WriteUInt16BigEndian(arp, 1);
        BinaryPrimitives.WriteUInt16BigEndian(arp.AsSpan(2), 0x0800);
        arp[4] = 6;
        arp[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(arp.AsSpan(6), 1);
        sender.CopyTo(arp.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(arp.AsSpan(14), senderIp);
        BinaryPrimitives.WriteUInt32BigEndian(arp.AsSpan(24), targetIp);
        return Ethernet(MacAddress.Broadcast, sender, EtherArp, arp);
    }
}
