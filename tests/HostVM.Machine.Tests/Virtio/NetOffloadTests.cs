using System.Buffers.Binary;
using HostVM.Machine.Virtio;
using HostVM.Networking;

namespace HostVM.Machine.Tests.Virtio;

public class NetOffloadTests
{
    /// <summary>An Ethernet + IPv4 + TCP frame (TCP checksum left as the guest would: the pseudo-header sum).</summary>
    internal static byte[] TcpFrame(int payload, byte flags = 0x18, uint seq = 1000, ushort id = 7)
    {
        var f = new byte[14 + 20 + 20 + payload];
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), 0x0800);
        var ip = f.AsSpan(14);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)Math.Min(65535, 40 + payload));
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], id);
        ip[8] = 64;
        ip[9] = 6;
        new byte[] { 10, 0, 2, 15, 10, 0, 2, 2 }.CopyTo(ip[12..]);
        var tcp = f.AsSpan(34);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], 80);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], seq);
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        var rnd = new Random(payload);
        rnd.NextBytes(f.AsSpan(54));
        return f;
    }

    /// <summary>An independent check: the checksum over a valid header or segment sums to 0xffff.</summary>
    private static bool IpChecksumOk(ReadOnlySpan<byte> ip) => Fold(Sum(ip[..20])) == 0xffff;

    private static bool TcpChecksumOk(ReadOnlySpan<byte> frame)
    {
        var ip = frame[14..];
        int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        int tcpLength = total - 20;
        ulong s = Sum(ip.Slice(12, 8)) + 6 + (ulong)tcpLength + Sum(ip.Slice(20, tcpLength));
        return Fold(s) == 0xffff;
    }

    private static ulong Sum(ReadOnlySpan<byte> d)
    {
        ulong s = 0;
        for (int i = 0; i < d.Length; i += 2)
        {
            s += (ulong)((d[i] << 8) | (i + 1 < d.Length ? d[i + 1] : 0));
        }

        return s;
    }

    private static ulong Fold(ulong s)
    {
        while (s > 0xffff)
        {
            s = (s & 0xffff) + (s >> 16);
        }

        return s;
    }

    [Theory]
    [InlineData(1448, 1448)]
    [InlineData(65000, 1448)]
    [InlineData(3000, 1000)]
    [InlineData(10, 1448)]
    public void TsoFrameIsCutIntoValidSegmentsCarryingTheSameBytes(int payload, int mss)
    {
        byte[] frame = TcpFrame(payload, flags: 0x19 | 0x80); // FIN|PSH|ACK|CWR
        var segments = new List<byte[]>();
        Assert.True(NetOffload.SegmentTcpV4(frame, mss, new byte[1514], s => segments.Add(s.ToArray())));
        Assert.Equal((payload + mss - 1) / mss, segments.Count);
        Assert.Equal(NetOffload.SegmentedLength(frame, mss), segments.Sum(s => (long)s.Length));
        var joined = new List<byte>();
        for (int i = 0; i < segments.Count; i++)
        {
            var s = segments[i];
            Assert.True(s.Length <= 1514);
            Assert.True(IpChecksumOk(s.AsSpan(14)), $"IP checksum of segment {i}");
            Assert.True(TcpChecksumOk(s), $"TCP checksum of segment {i}");
            Assert.Equal(s.Length - 14, BinaryPrimitives.ReadUInt16BigEndian(s.AsSpan(16)));
            Assert.Equal((ushort)(7 + i), BinaryPrimitives.ReadUInt16BigEndian(s.AsSpan(18)));
            Assert.Equal(1000u + (uint)(i * mss), BinaryPrimitives.ReadUInt32BigEndian(s.AsSpan(38)));
            byte f = s[47];
            Assert.Equal(i == segments.Count - 1, (f & 0x01) != 0); // FIN last only
            Assert.Equal(i == segments.Count - 1, (f & 0x08) != 0); // PSH last only
            Assert.Equal(i == 0, (f & 0x80) != 0);                  // CWR first only
            Assert.True((f & 0x10) != 0);                           // ACK on all
            joined.AddRange(s.AsSpan(54).ToArray());
        }

        Assert.Equal(frame.AsSpan(54).ToArray(), joined.ToArray());
    }

    [Fact]
    public void PartialChecksumIsCompleted()
    {
        byte[] frame = TcpFrame(777);
        // As the guest leaves it: the pseudo-header sum (not complemented) in the checksum field.
        ulong pseudo = Sum(frame.AsSpan(26, 8)) + 6 + (20 + 777);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(50), (ushort)Fold(pseudo));
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(24), InternetChecksum.Finish(InternetChecksum.Add(0, frame.AsSpan(14, 20))));
        Assert.True(NetOffload.CompleteChecksum(frame, 34, 16));
        Assert.True(TcpChecksumOk(frame));
    }

    [Theory]
    [InlineData(0, 16)]      // inside the Ethernet header
    [InlineData(34, 10000)]  // offset past the end
    [InlineData(5000, 0)]    // start past the end
    [InlineData(34, -1)]
    public void ChecksumOffsetsOutsideTheFrameAreRefused(int start, int offset) =>
        Assert.False(NetOffload.CompleteChecksum(TcpFrame(100), start, offset));

    [Fact]
    public void FramesThatAreNotTcpV4OrLieAboutTheirHeadersAreNotSegmented()
    {
        var scratch = new byte[1514];
        int sent = 0;
        void Count(ReadOnlySpan<byte> s) => sent++;
        byte[] udp = TcpFrame(3000);
        udp[23] = 17;
        Assert.False(NetOffload.SegmentTcpV4(udp, 1448, scratch, Count));
        byte[] v6 = TcpFrame(3000);
        BinaryPrimitives.WriteUInt16BigEndian(v6.AsSpan(12), 0x86dd);
        Assert.False(NetOffload.SegmentTcpV4(v6, 1448, scratch, Count));
        byte[] hugeTcpHeader = TcpFrame(10);
        hugeTcpHeader[46] = 0xf0; // data offset 60 bytes > what the frame holds
        Assert.False(NetOffload.SegmentTcpV4(hugeTcpHeader, 1448, scratch, Count));
        Assert.False(NetOffload.SegmentTcpV4(TcpFrame(3000), 0, scratch, Count));      // no MSS
        Assert.False(NetOffload.SegmentTcpV4(TcpFrame(3000), 1, scratch, Count));      // one byte a packet: a flood
        Assert.False(NetOffload.SegmentTcpV4(TcpFrame(3000), NetOffload.MinMss - 1, scratch, Count));
        Assert.Equal(-1, NetOffload.SegmentedLength(TcpFrame(3000), NetOffload.MinMss - 1));
        Assert.False(NetOffload.SegmentTcpV4(TcpFrame(3000), 9000, scratch, Count));   // MSS beyond the MTU
        Assert.False(NetOffload.SegmentTcpV4(TcpFrame(3000).AsSpan(0, 40), 1448, scratch, Count)); // truncated
        Assert.Equal(0, sent);
    }

    [Theory]
    [InlineData(0x01, true)]
    [InlineData(0x81, true)] // with the ECN bit: still TCPv4, and charged as such
    [InlineData(0x00, false)]
    [InlineData(0x03, false)]
    [InlineData(0x83, false)]
    public void TheGsoTypeIsClassifiedOnceForChargingAndSending(byte gso, bool tcpV4) => Assert.Equal(tcpV4, NetOffload.IsTcpV4Gso(gso));

    [Fact]
    public void TheSmallestMssSegmentsAndCountsItsPackets()
    {
        var segments = new List<byte[]>();
        Assert.True(NetOffload.SegmentTcpV4(TcpFrame(880), NetOffload.MinMss, new byte[1514], s => segments.Add(s.ToArray())));
        Assert.Equal(10, segments.Count);
        Assert.Equal(880 + (10 * 54), NetOffload.SegmentedLength(TcpFrame(880), NetOffload.MinMss, out int packets));
        Assert.Equal(10, packets);
    }
}
