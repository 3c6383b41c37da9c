using HostVM.Machine.Virtio;
using HostVM.Networking;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>virtio-net on a loopback port: frames shorter than the header, runts, giants, receive buffers too small.</summary>
internal sealed class FuzzNetTarget : FuzzTarget
{
    private readonly LoopbackPacketPort _port = new();
    private readonly VirtioNet _net;

    public FuzzNetTarget() => _net = new VirtioNet(_port, MacAddress.Parse("52:54:00:fa:22:01"));

    public override VirtioDevice Device => _net;

    public override FuzzRequest MalformedRequest(FuzzGuest guest)
    {
        var r = guest.Random;
        var segments = new List<DescriptorSegment>();
        if (r.Next(3) == 0)
        {
            // Receive buffers, often too small for header + frame.
            int n = r.Next(1, 4);
            for (int i = 0; i < n; i++)
            {
                uint length = (uint)(r.Next(3) == 0 ? r.Next(0, 13) : r.Next(0, 2000));
                segments.Add(r.Next(8) == 0 ? guest.RandomSegment() : guest.RandomBytes(length, writable: r.Next(6) != 0));
            }

            return new FuzzRequest(0, segments);
        }

        // Transmit: virtio_net_hdr (10 or 12 bytes) + frame, of any length, in pieces.
        int total = r.Next(5) switch
        {
            0 => r.Next(0, 12),                                   // shorter than the header
            1 => 12 + r.Next(0, VirtioNet.EthernetHeaderSize),    // a runt
            2 => r.Next(IPacketPort.MaxFrameSize + 1, 4000),      // a giant
            _ => r.Next(10, IPacketPort.MaxFrameSize + 13),
        };
        int pieces = r.Next(1, 4);
        int left = total;
        for (int i = 0; i < pieces; i++)
        {
            int length = i == pieces - 1 ? left : r.Next(0, left + 1);
            left -= length;
            segments.Add(r.Next(10) == 0 ? guest.RandomSegment() : guest.RandomBytes((uint)length, writable: false));
        }

        if (r.Next(6) == 0)
        {
            segments.Add(guest.RandomBytes((uint)r.Next(0, 100), writable: true)); // the device has nothing to write
        }

        return new FuzzRequest(1, segments);
    }

    public override void HostEvent(FuzzGuest guest)
    {
        var r = guest.Random;
        var frame = new byte[r.Next(3) == 0 ? r.Next(0, 2000) : r.Next(VirtioNet.EthernetHeaderSize, IPacketPort.MaxFrameSize + 1)];
        r.NextBytes(frame);
        _port.Receiver.Receive(frame);
    }

    public override void CheckLive(FuzzGuest guest, int batch)
    {
        var d = guest.Driver;
        int headerSize = (d.Features & VirtioFeatures.Version1) != 0 ? 12 : 10;
        var header = d.Buffer((uint)headerSize);
        var frame = new byte[60];
        MacAddress.Broadcast.CopyTo(frame);
        BitConverter.TryWriteBytes(frame.AsSpan(20), batch);
        var payload = d.Buffer((uint)frame.Length);
        d.Fill(payload, frame);
        _port.Sent.Clear();
        d.Submit(1, [header, payload], [], indirect: batch % 2 == 1);
        Assert.Contains(_port.Sent, f => f.AsSpan().SequenceEqual(frame));
    }

    public override void CheckExercised(FuzzGuest guest)
    {
        Assert.True(_net.Statistics.SendDropped > 0, $"seed 0x{guest.Seed:x}: no malformed frame ever reached the device");
        Assert.True(_net.Statistics.SentFrames > 0, $"seed 0x{guest.Seed:x}: nothing was sent");
    }
}
