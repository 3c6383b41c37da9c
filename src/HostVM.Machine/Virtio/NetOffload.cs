using System.Buffers.Binary;
using HostVM.Networking;

namespace HostVM.Machine.Virtio;

/// <summary>
/// The transmit offloads virtio-net offers (VIRTIO_NET_F_CSUM, HOST_TSO4), done in the device so that
/// every backend (NAT, switch, TAP) still gets plain, complete Ethernet frames: a frame marked
/// NEEDS_CSUM gets its checksum filled in; a TCPv4 GSO frame (up to 64 KiB) is cut into MSS-sized
/// segments, each with its own IPv4 length, id and checksum, TCP sequence number, flags and checksum.
/// The guest's TCP stack then handles a 64 KiB write as one packet, which is what makes it fast.
/// Everything is validated: a frame the guest lies about is dropped, never read past its end.
/// </summary>
public static class NetOffload
{
    public const byte FlagNeedsCsum = 1;
    public const byte GsoNone = 0;
    public const byte GsoTcpV4 = 1;

    /// <summary>
    /// The smallest MSS a GSO frame may ask for: IPv4's minimum datagram (576) less 40 bytes of headers
    /// is 536; Linux itself never goes below 88 (TCP_MIN_MSS). Smaller would let one 64 KiB frame turn
    /// into tens of thousands of packets on the switch, its peers and the NAT.
    /// </summary>
    public const int MinMss = 88;

    private const byte GsoEcn = 0x80;
    private const int EthernetHeader = 14;

    /// <summary>The frame asks for TCPv4 segmentation (with or without the ECN bit): decided once, for charging and for sending alike.</summary>
    public static bool IsTcpV4Gso(byte gsoType) => (gsoType & ~GsoEcn) == GsoTcpV4;

    /// <summary>Fills in the checksum at csum_start + csum_offset over [csum_start, end). False if the offsets do not fit.</summary>
    public static bool CompleteChecksum(Span<byte> frame, int start, int offset)
    {
        if (start < EthernetHeader || offset < 0 || start > frame.Length || start + offset + 2 > frame.Length)
        {
            return false;
        }

        // The field holds the pseudo-header sum the guest put there; summing over it includes it.
        ushort sum = InternetChecksum.Finish(InternetChecksum.Add(0, frame[start..]));
        BinaryPrimitives.WriteUInt16BigEndian(frame[(start + offset)..], sum);
        return true;
    }

    /// <summary>Bytes the segments of a TCPv4 GSO frame will take on the wire, or -1 if it is not one we can cut.</summary>
    public static long SegmentedLength(ReadOnlySpan<byte> frame, int mss) => SegmentedLength(frame, mss, out _);

    /// <summary>As <see cref="SegmentedLength(ReadOnlySpan{byte}, int)"/>, and how many segments (packets) that is.</summary>
    public static long SegmentedLength(ReadOnlySpan<byte> frame, int mss, out int segments)
    {
        segments = 0;
        if (!TryParseTcpV4(frame, mss, out int headers))
        {
            return -1;
        }

        int payload = frame.Length - headers;
        segments = Math.Max(1, (payload + mss - 1) / mss);
        return payload + ((long)segments * headers);
    }

    /// <summary>Cuts a TCPv4 GSO frame into segments of at most <paramref name="mss"/> payload bytes and sends each.</summary>
    public static bool SegmentTcpV4(ReadOnlySpan<byte> frame, int mss, Span<byte> scratch, Action<ReadOnlySpan<byte>> send)
    {
        if (!TryParseTcpV4(frame, mss, out int headers) || scratch.Length < headers + mss)
        {
            return false;
        }

        int ipOffset = EthernetHeader;
        int ipHeader = (frame[ipOffset] & 0xf) * 4;
        int tcpOffset = ipOffset + ipHeader;
        int tcpHeader = headers - tcpOffset;
        ushort id = BinaryPrimitives.ReadUInt16BigEndian(frame[(ipOffset + 4)..]);
        uint seq = BinaryPrimitives.ReadUInt32BigEndian(frame[(tcpOffset + 4)..]);
        byte flags = frame[tcpOffset + 13];
        var payload = frame[headers..];
        int count = Math.Max(1, (payload.Length + mss - 1) / mss);
        for (int i = 0; i < count; i++)
        {
            var chunk = payload.Slice(i * mss, Math.Min(mss, payload.Length - (i * mss)));
            var segment = scratch[..(headers + chunk.Length)];
            frame[..headers].CopyTo(segment);
            chunk.CopyTo(segment[headers..]);

            var ip = segment[ipOffset..];
            BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(ipHeader + tcpHeader + chunk.Length));
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)(id + i));
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], 0);
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], InternetChecksum.Finish(InternetChecksum.Add(0, ip[..ipHeader])));

            var tcp = segment[tcpOffset..];
            BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq + (uint)(i * mss));
            byte f = flags;
            if (i != count - 1)
            {
                f &= unchecked((byte)~0x09); // FIN and PSH only on the last segment
            }

            if (i != 0)
            {
                f &= 0x7f; // CWR only on the first
            }

            tcp[13] = f;
            BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], 0);
            int tcpLength = tcpHeader + chunk.Length;
            ulong sum = InternetChecksum.Add(0, ip.Slice(12, 8)); // source and destination addresses
            sum += 6UL + (ulong)tcpLength;
            sum = InternetChecksum.Add(sum, tcp[..tcpLength]);
            BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], InternetChecksum.Finish(sum));
            send(segment);
        }

        return true;
    }

    private static bool TryParseTcpV4(ReadOnlySpan<byte> frame, int mss, out int headers)
    {
        headers = 0;
        if (mss < MinMss || frame.Length < EthernetHeader + 20 + 20
            || BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) != 0x0800)
        {
            return false;
        }

        var ip = frame[EthernetHeader..];
        int ipHeader = (ip[0] & 0xf) * 4;
        if (ip[0] >> 4 != 4 || ipHeader < 20 || ip[9] != 6 || EthernetHeader + ipHeader + 20 > frame.Length)
        {
            return false;
        }

        int tcpHeader = (frame[EthernetHeader + ipHeader + 12] >> 4) * 4;
        headers = EthernetHeader + ipHeader + tcpHeader;
        // Each segment must be a legal frame: at most the MTU of IP packet.
        return tcpHeader >= 20 && headers <= frame.Length && ipHeader + tcpHeader + mss <= 1500;
    }
}
