using System.Buffers.Binary;
using HostVM.Machine.Virtio;
using HostVM.Networking;

namespace HostVM.Machine.Tests.Virtio;

public sealed class VirtioNetTests : IDisposable
{
    private const int Rx = 0, Tx = 1;
    private static readonly MacAddress Mac = MacAddress.Parse("52:54:00:12:34:56");

    private readonly LoopbackPacketPort _port = new();
    private readonly VirtioNet _net;
    private VirtioRig? _rig;

    public VirtioNetTests() => _net = new VirtioNet(_port, Mac);

    public void Dispose()
    {
        if (_rig is null)
        {
            _net.Dispose();
        }
        else
        {
            _rig.Dispose();
        }
    }

    private VirtioTestDriver Open(bool legacy)
    {
        _rig = new VirtioRig(_net, legacy);
        _rig.Driver.Initialize();
        return _rig.Driver;
    }

    private static byte[] Frame(int length, byte seed)
    {
        var f = new byte[length];
        for (int i = 0; i < length; i++)
        {
            f[i] = (byte)(seed + i);
        }

        return f;
    }

    [Theory]
    [InlineData(false, 12, false)]
    [InlineData(true, 10, false)]
    [InlineData(false, 12, true)]
    [InlineData(true, 10, true)]
    public void Transmitted_frames_reach_the_port_without_the_virtio_header(bool legacy, int header, bool indirect)
    {
        var d = Open(legacy);
        var hdr = d.Buffer((uint)header);
        // flags 0 and gso_type NONE; the other fields mean nothing then and must be ignored.
        d.Fill(hdr, [0, 0, .. Enumerable.Repeat((byte)0xee, header - 2)]);
        var frame = Frame(60, 1);
        var a = d.Buffer(20);
        var b = d.Buffer(40);
        d.Fill(a, frame.AsSpan(0, 20));
        d.Fill(b, frame.AsSpan(20));
        Assert.Equal(0u, d.Submit(Tx, [hdr, a, b], [], indirect).Written);

        // Header and data in one buffer, as Linux sends small frames.
        var one = d.Buffer((uint)(header + 14));
        d.Fill(one, [.. new byte[header], .. Frame(14, 9)]);
        d.Submit(Tx, [one], []);

        Assert.Equal([frame, Frame(14, 9)], _port.Sent.ToArray());
        Assert.Equal(2, _net.Statistics.SentFrames);
        Assert.Equal(74, _net.Statistics.SentBytes);
    }

    [Theory]
    [InlineData(13)]
    [InlineData(0)]
    [InlineData(IPacketPort.MaxFrameSize + 1)]
    public void Undersize_and_oversize_transmit_frames_are_dropped_and_counted(int length)
    {
        var d = Open(false);
        var buf = d.Buffer((uint)(12 + length));
        Assert.Equal(0u, d.Submit(Tx, [buf], []).Written);
        var runt = d.Buffer(5); // shorter than the header itself
        d.Submit(Tx, [runt], []);
        Assert.Empty(_port.Sent);
        Assert.Equal(2, _net.Statistics.SendDropped);

        var ok = d.Buffer(12 + IPacketPort.MaxFrameSize);
        d.Submit(Tx, [ok], []);
        Assert.Single(_port.Sent);
    }

    [Theory]
    [InlineData(false, 12)]
    [InlineData(true, 10)]
    public void Received_frames_land_in_posted_buffers_after_a_header(bool legacy, int header)
    {
        var d = Open(legacy);
        var small = d.Buffer(20);
        var rest = d.Buffer(2000);
        var q = d.Queue(Rx);
        q.Add([], [small, rest]);
        d.Kick(Rx);
        var frame = Frame(IPacketPort.MaxFrameSize, 3);
        Assert.True(_port.Receiver.Receive(frame));
        var used = d.WaitUsed(Rx);
        Assert.Equal((uint)(header + frame.Length), used.Written);
        byte[] got = [.. d.Contents(small), .. d.Contents(rest)];
        var expectedHeader = new byte[header];
        if (header == 12)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(expectedHeader.AsSpan(10), 1); // num_buffers
        }

        Assert.Equal(expectedHeader, got[..header]);
        Assert.Equal(frame, got[header..(header + frame.Length)]);
        Assert.Equal(1, _net.Statistics.ReceivedFrames);
    }

    [Fact]
    public void Frames_wait_for_a_receive_buffer()
    {
        var d = Open(false);
        Assert.True(_port.Receiver.Receive(Frame(64, 0)));
        Assert.True(_port.Receiver.Receive(Frame(64, 1)));
        var b1 = d.Buffer(100);
        var b2 = d.Buffer(100);
        d.Queue(Rx).Add([], [b1]);
        d.Queue(Rx).Add([], [b2]);
        d.Kick(Rx);
        d.WaitUsed(Rx);
        d.WaitUsed(Rx);
        Assert.Equal(Frame(64, 0), d.Contents(b1)[12..76]);
        Assert.Equal(Frame(64, 1), d.Contents(b2)[12..76]);
    }

    [Fact]
    public void Oversize_received_frames_and_frames_that_do_not_fit_are_dropped_and_counted()
    {
        var d = Open(false);
        Assert.False(_port.Receiver.Receive(new byte[IPacketPort.MaxFrameSize + 1]));
        Assert.Equal(1, _net.Statistics.ReceiveDropped);

        var tiny = d.Buffer(40);
        d.Queue(Rx).Add([], [tiny]);
        d.Kick(Rx);
        Assert.True(_port.Receiver.Receive(Frame(100, 0)));
        Assert.Equal(0u, d.WaitUsed(Rx).Written);
        Assert.Equal(2, _net.Statistics.ReceiveDropped);
        Assert.All(d.Contents(tiny), x => Assert.Equal(0, x));
    }

    [Fact]
    public void Frames_before_DRIVER_OK_are_dropped()
    {
        _rig = new VirtioRig(_net);
        Assert.False(_port.Receiver.Receive(Frame(64, 0)));
        Assert.Equal(1, _net.Statistics.ReceiveDropped);
    }

    [Fact]
    public void Config_has_mac_link_and_mtu()
    {
        var d = Open(false);
        var mac = new byte[6];
        for (int i = 0; i < 6; i++)
        {
            mac[i] = (byte)d.ReadConfig(i, 1);
        }

        Assert.Equal(Mac, MacAddress.FromBytes(mac));
        Assert.Equal(1UL, d.ReadConfig(6, 2));
        _port.LinkUp = false;
        Assert.Equal(0UL, d.ReadConfig(6, 2));
        Assert.Equal((ulong)VirtioNet.Mtu, d.ReadConfig(10, 2));
    }

    [Fact]
    public void Transmits_streamed_with_EVENT_IDX_are_never_missed()
    {
        var d = Open(false);
        var buf = d.Buffer(12 + 60);
        d.Stream(Tx, 1000, [buf], []);
        Assert.Equal(1000, _port.Sent.Count);
    }

    [Fact]
    public void A_GSO_frame_pays_bytes_and_operations_for_every_segment_it_becomes()
    {
        // 8 packets per 10 s. A TSO frame of 8 segments marked with the ECN bit (gso_type 0x81) uses them
        // all, so the next frame waits: it was once charged as one 8 KiB frame and then cut into packets.
        var limits = new RateLimitSettings(null, new TokenBucketSettings(8, TimeSpan.FromSeconds(10)));
        var port = new LoopbackPacketPort();
        using var rig = new VirtioRig(new VirtioNet(port, Mac, transmitLimits: limits), legacy: false);
        var d = rig.Driver;
        d.Initialize();
        var net = (VirtioNet)rig.Device;

        byte[] frame = NetOffloadTests.TcpFrame(8000);
        var hdr = new byte[12];
        hdr[1] = 0x81;
        BinaryPrimitives.WriteUInt16LittleEndian(hdr.AsSpan(4), 1000); // gso_size
        var gso = d.Buffer((uint)(hdr.Length + frame.Length));
        d.Fill(gso, [.. hdr, .. frame]);
        d.Submit(Tx, [gso], []);
        Assert.Equal(8, port.Sent.Count);
        Assert.Equal(0, net.TransmitLimiter.Throttled);

        var plain = d.Buffer(12 + 60);
        d.Fill(plain, [.. new byte[12], .. Frame(60, 3)]);
        d.Queue(Tx).Add([plain], []);
        d.Kick(Tx);
        Assert.True(VirtioTestDriver.WaitUntil(() => net.TransmitLimiter.Throttled > 0, TimeSpan.FromSeconds(5)), "the ninth packet waits for the bucket");
        Assert.Equal(8, port.Sent.Count);
    }

    [Fact]
    public void On_a_shared_switch_frames_with_another_source_MAC_are_dropped_and_counted()
    {
        var port = new LoopbackPacketPort();
        using var rig = new VirtioRig(new VirtioNet(port, Mac, filterGuestFrames: true), legacy: false);
        var d = rig.Driver;
        d.Initialize();
        var net = (VirtioNet)rig.Device;

        byte[] Ethernet(MacAddress source)
        {
            var f = Frame(60, 5);
            source.CopyTo(f.AsSpan(6));
            f[12] = 0x88;
            f[13] = 0xb5;
            return f;
        }

        foreach (var source in new[] { MacAddress.Parse("52:54:00:00:00:99"), MacAddress.Parse("52:55:0a:00:02:02"), Mac })
        {
            var b = d.Buffer(12 + 60);
            d.Fill(b, [.. new byte[12], .. Ethernet(source)]);
            d.Submit(Tx, [b], []);
        }

        Assert.Equal([Ethernet(Mac)], port.Sent.ToArray());
        Assert.Equal(2, net.Statistics.SendSpoofed);
        Assert.Equal(2, net.Statistics.SendDropped);
    }
}
