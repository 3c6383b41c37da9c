using System.Buffers.Binary;

namespace HostVM.Networking.UserNet;

/// <summary>A checked view of a TCP segment from the guest (RFC 793, options from RFC 7323).</summary>
internal readonly ref struct TcpSegment
{
    public const byte Fin = 0x01;
    public const byte Syn = 0x02;
    public const byte Rst = 0x04;
    public const byte Psh = 0x08;
    public const byte Ack = 0x10;
    public const int HeaderLength = 20;

    private TcpSegment(ReadOnlySpan<byte> segment, int headerLength)
    {
        SourcePort = BinaryPrimitives.ReadUInt16BigEndian(segment);
        DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(segment[2..]);
        Sequence = BinaryPrimitives.ReadUInt32BigEndian(segment[4..]);
        Acknowledgment = BinaryPrimitives.ReadUInt32BigEndian(segment[8..]);
        Flags = segment[13];
        Window = BinaryPrimitives.ReadUInt16BigEndian(segment[14..]);
        Payload = segment[headerLength..];
        ReadOptions(segment[HeaderLength..headerLength], out int mss, out int windowScale);
        MaximumSegmentSize = mss;
        WindowScale = windowScale;
    }

    public ushort SourcePort { get; }

    public ushort DestinationPort { get; }

    public uint Sequence { get; }

    public uint Acknowledgment { get; }

    public byte Flags { get; }

    public ushort Window { get; }

    public ReadOnlySpan<byte> Payload { get; }

    /// <summary>The MSS option, or -1 when absent.</summary>
    public int MaximumSegmentSize { get; }

    /// <summary>The window-scale shift, or -1 when absent.</summary>
    public int WindowScale { get; }

    public bool Has(byte flag) => (Flags & flag) != 0;

    /// <summary>Parses and checks the checksum; false for anything a host stack would drop.</summary>
    public static bool TryParse(uint source, uint destination, ReadOnlySpan<byte> segment, out TcpSegment result)
    {
        result = default;
        if (segment.Length < HeaderLength)
        {
            return false;
        }

        int headerLength = (segment[12] >> 4) * 4;
        if (headerLength < HeaderLength || headerLength > segment.Length)
        {
            return false;
        }

        if (!InternetChecksum.IsValidTransport(source, destination, Ipv4Packet.ProtocolTcp, segment))
        {
            return false;
        }

        result = new TcpSegment(segment, headerLength);
        return true;
    }

    private static void ReadOptions(ReadOnlySpan<byte> options, out int mss, out int windowScale)
    {
        mss = -1;
        windowScale = -1;
        int i = 0;
        while (i < options.Length)
        {
            byte kind = options[i];
            if (kind == 0)
            {
                return;
            }

            if (kind == 1)
            {
                i++;
                continue;
            }

            if (i + 1 >= options.Length)
            {
                return;
            }

            int length = options[i + 1];
            if (length < 2 || i + length > options.Length)
            {
                return;
            }

            if (kind == 2 && length == 4)
            {
                mss = BinaryPrimitives.ReadUInt16BigEndian(options[(i + 2)..]);
            }
            else if (kind == 3 && length == 3)
            {
                windowScale = Math.Min((int)options[i + 2], 14);
            }

            i += length;
        }
    }
}
