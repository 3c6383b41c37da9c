using System.Buffers.Binary;

namespace HostVM.Networking.Tests.UserNet;

/// <summary>A frame the network sent to the fake guest, decoded; <see cref="Problem"/> says what was wrong with it, if anything.</summary>
internal sealed class ReceivedFrame
{
    private ReceivedFrame(byte[] bytes) => Bytes = bytes;

    public byte[] Bytes { get; }

    public MacAddress Destination => MacAddress.FromBytes(Bytes);

    public MacAddress Source => MacAddress.FromBytes(Bytes.AsSpan(6));

    public ushort EtherType => BinaryPrimitives.ReadUInt16BigEndian(Bytes.AsSpan(12));

    public uint IpSource { get; private set; }

    public uint IpDestination { get; private set; }

    public byte Protocol { get; private set; }

    /// <summary>ARP body, or the IP payload (transport header included).</summary>
    public byte[] L3Payload { get; private set; } = [];

    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(L3Payload);

    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(L3Payload.AsSpan(2));

    public uint Seq => BinaryPrimitives.ReadUInt32BigEndian(L3Payload.AsSpan(4));

    public uint AckNumber => BinaryPrimitives.ReadUInt32BigEndian(L3Payload.AsSpan(8));

    public byte Flags => L3Payload[13];

    public ushort Window => BinaryPrimitives.ReadUInt16BigEndian(L3Payload.AsSpan(14));

    public bool IsTcp => Protocol == 6;

    public bool IsUdp => Protocol == 17;

    public ReadOnlySpan<byte> TcpOptions => L3Payload.AsSpan(20, (L3Payload[12] >> 4) * 4 - 20);

    /// <summary>TCP or UDP data.</summary>
    public byte[] Data { get; private set; } = [];

    public string? Problem { get; private set; }

    public bool Has(byte flag) => (Flags & flag) != 0;

    public static ReceivedFrame Parse(byte[] bytes)
    {
        var frame = new ReceivedFrame(bytes);
        if (bytes.Length < 14 || bytes.Length > 1514)
        {
            frame.Problem = $"bad frame length {bytes.Length}";
            return frame;
        }

        var body = bytes.AsSpan(14);
        if (frame.EtherType == Packets.EtherArp)
        {
            frame.L3Payload = body.ToArray();
            return frame;
        }

        if (frame.EtherType != Packets.EtherIpv4 || body.Length < 20 || body[0] != 0x45)
        {
            frame.Problem = "not a plain IPv4 frame";
            return frame;
        }

        int total = BinaryPrimitives.ReadUInt16BigEndian(body[2..]);
        if (total > body.Length || total < 20)
        {
            frame.Problem = "IPv4 total length disagrees with the frame";
            return frame;
        }

        if (Packets.Checksum(body[..20]) != 0)
        {
            frame.Problem = "bad IPv4 header checksum";
        }

        frame.IpSource = BinaryPrimitives.ReadUInt32BigEndian(body[12..]);
        frame.IpDestination = BinaryPrimitives.ReadUInt32BigEndian(body[16..]);
        frame.Protocol = body[9];
        var payload = body[20..total];
        frame.L3Payload = payload.ToArray();
        switch (frame.Protocol)
        {
            case 1:
                if (Packets.Checksum(payload) != 0)
                {
                    frame.Problem ??= "bad ICMP checksum";
                }

                frame.Data = payload.ToArray();
                break;
            case 6:
                if (Packets.Checksum(payload, Packets.Pseudo(frame.IpSource, frame.IpDestination, 6, payload.Length)) != 0)
                {
                    frame.Problem ??= "bad TCP checksum";
                }

                frame.Data = payload[((payload[12] >> 4) * 4)..].ToArray();
                break;
            case 17:
                if (BinaryPrimitives.ReadUInt16BigEndian(payload[6..]) == 0 ||
                    Packets.Checksum(payload, Packets.Pseudo(frame.IpSource, frame.IpDestination, 17, payload.Length)) != 0)
                {
                    frame.Problem ??= "bad or missing UDP checksum";
                }

                if (BinaryPrimitives.ReadUInt16BigEndian(payload[4..]) != payload.Length)
                {
                    frame.Problem ??= "UDP length disagrees with IP length";
                }

                frame.Data = payload[8..].ToArray();
                break;
        }

        return frame;
    }
}
