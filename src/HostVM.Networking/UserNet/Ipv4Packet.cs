using System.Buffers.Binary;

namespace HostVM.Networking.UserNet;

/// <summary>
/// A checked view of an IPv4 packet inside an Ethernet frame. Parsing refuses anything a host
/// stack would drop (bad version, lengths that disagree, bad header checksum) and fragments,
/// which the NAT does not reassemble; options are skipped.
/// </summary>
internal readonly ref struct Ipv4Packet
{
    public const byte ProtocolIcmp = 1;
    public const byte ProtocolTcp = 6;
    public const byte ProtocolUdp = 17;
    public const int HeaderLength = 20;

    private Ipv4Packet(uint source, uint destination, byte protocol, ReadOnlySpan<byte> payload)
    {
        Source = source;
        Destination = destination;
        Protocol = protocol;
        Payload = payload;
    }

    public uint Source { get; }

    public uint Destination { get; }

    public byte Protocol { get; }

    /// <summary>The transport header and data, trimmed to the packet's total length (Ethernet padding removed).</summary>
    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>Parses the bytes after the Ethernet header.</summary>
    public static bool TryParse(ReadOnlySpan<byte> packet, out Ipv4Packet result)
    {
        result = default;
        if (packet.Length < HeaderLength || packet[0] >> 4 != 4)
        {
            return false;
        }

        int headerLength = (packet[0] & 0xf) * 4;
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        if (headerLength < HeaderLength || totalLength < headerLength || totalLength > packet.Length)
        {
            return false;
        }

        ushort fragment = BinaryPrimitives.ReadUInt16BigEndian(packet[6..]);
        bool moreFragments = (fragment & 0x2000) != 0;
        if (moreFragments || (fragment & 0x1fff) != 0)
        {
            return false;
        }

        if (!InternetChecksum.IsValid(packet[..headerLength]))
        {
            return false;
        }

        result = new Ipv4Packet(
            BinaryPrimitives.ReadUInt32BigEndian(packet[12..]),
            BinaryPrimitives.ReadUInt32BigEndian(packet[16..]),
            packet[9],
            packet[headerLength..totalLength]);
        return true;
    }

    /// <summary>Writes a 20-byte header (no options, don't-fragment set) with its checksum.</summary>
    public static void WriteHeader(Span<byte> header, uint source, uint destination, byte protocol, int payloadLength, ushort identification)
    {
        header[0] = 0x45;
        header[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(header[2..], (ushort)(HeaderLength + payloadLength));
        BinaryPrimitives.WriteUInt16BigEndian(header[4..], identification);
        BinaryPrimitives.WriteUInt16BigEndian(header[6..], 0x4000);
        header[8] = 64;
        header[9] = protocol;
        header[10] = 0;
        header[11] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(header[12..], source);
        BinaryPrimitives.WriteUInt32BigEndian(header[16..], destination);
        BinaryPrimitives.WriteUInt16BigEndian(header[10..], InternetChecksum.Compute(header[..HeaderLength]));
    }
}
