using HostVM.Machine.Virtio;
using HostVM.Networking;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>virtio-net's state (queues, limiters, frames waiting for receive buffers) round-trips under random traffic.</summary>
public sealed class VirtioNetStateTests
{
    private static readonly MacAddress Mac = MacAddress.Parse("52:54:00:12:34:56");

    private static StateTwin Twin(bool legacy, RateLimitSettings? transmitLimits = null)
    {
        var twin = new StateTwin(() => new VirtioNet(new LoopbackPacketPort(), Mac, transmitLimits: transmitLimits), legacy);
        // B's port exists from the restore on: compare what A sent since then with all B sent.
        int before = -1;
        twin.AssertBackendsSame = step =>
        {
            if (before < 0)
            {
                before = Sent(twin.A).Count - Sent(twin.B).Count;
            }

            Assert.True(
                Sent(twin.A).Skip(before).SequenceEqual(Sent(twin.B)),
                $"{step}: A sent {Sent(twin.A).Count - before} frames since the save, B {Sent(twin.B).Count}, or they differ");
        };
        return twin;
    }

    private static List<string> Sent(VirtioRig rig) => [.. ((LoopbackPacketPort)((VirtioNet)rig.Device).Port).Sent.Select(Convert.ToHexString)];

    private static byte[] Frame(Random random)
    {
        var frame = new byte[random.Next(60, 200)];
        random.NextBytes(frame);
        frame[0] = 0x52; // unicast
        return frame;
    }

    /// <summary>A frame sent, a receive buffer offered, or a frame arriving from the network.</summary>
    private static Action? Request(RequestTraffic t)
    {
        var r = t.Random;
        var d = t.Driver;
        int headerSize = d.Legacy ? 10 : 12;
        switch (r.Next(3))
        {
            case 0 when d.Queue(1).FreeDescriptors > 0:
                var frame = Frame(r);
                var tx = d.Buffer((uint)(headerSize + frame.Length));
                frame.CopyTo(d.Ram.GetSpan(tx.Address + (ulong)headerSize, frame.Length));
                d.Queue(1).Add([tx], []);
                return t.Kick(1);
            case 1 when d.Queue(0).FreeDescriptors > 0:
                var rx = d.Buffer((uint)(headerSize + 1514));
                d.Queue(0).Add([], [rx]);
                return r.Next(4) != 0 ? t.Kick(0) : null;
            default:
                var arriving = Frame(r);
                return t.Host(device => ((LoopbackPacketPort)((VirtioNet)device).Port).Receiver.Receive(arriving));
        }
    }

    [Theory]
    [InlineData(false, 1)]
    [InlineData(false, 2)]
    [InlineData(false, 3)]
    [InlineData(true, 4)]
    [InlineData(true, 5)]
    public void Random_traffic_after_a_restore_is_served_alike(bool legacy, int seed)
    {
        using var twin = Twin(legacy);
        new RequestTraffic(twin, seed).Run(50, Request);
    }

    [Fact]
    public void Frames_waiting_for_receive_buffers_are_delivered_after_a_restore()
    {
        using var twin = Twin(legacy: false);
        var d = twin.A.Driver;
        d.Initialize();
        var port = (LoopbackPacketPort)((VirtioNet)twin.A.Device).Port;
        var frames = new[] { Frame(new Random(1)), Frame(new Random(2)) };
        foreach (var f in frames)
        {
            Assert.True(port.Receiver.Receive(f));
        }

        twin.Settle();
        var state = (VirtioNetState)twin.A.Transport.SaveState().Device;
        Assert.Equal(2, state.Backlog.Length);
        twin.SaveIntoB();
        var rx1 = d.Buffer(12 + 1514);
        var rx2 = d.Buffer(12 + 1514);
        d.Queue(0).Add([], [rx1]);
        d.Queue(0).Add([], [rx2]);
        twin.CopyRam();
        twin.Write(MmioTransport.RegQueueNotify, 0);
        twin.AssertSame("delivered");
        Assert.Equal(frames[1], twin.B.Ram.GetSpan(rx2.Address + 12, frames[1].Length).ToArray());
    }

    [Fact]
    public void A_frame_held_by_the_transmit_limiter_is_sent_once_after_a_restore()
    {
        var limits = new RateLimitSettings(null, new TokenBucketSettings(1, TimeSpan.FromHours(1)));
        using var twin = Twin(legacy: false, limits);
        var d = twin.A.Driver;
        d.Initialize();
        for (int i = 0; i < 3; i++)
        {
            var frame = Frame(new Random(i));
            var tx = d.Buffer((uint)(12 + frame.Length));
            frame.CopyTo(d.Ram.GetSpan(tx.Address + 12, frame.Length));
            d.Queue(1).Add([tx], []);
        }

        d.Kick(1);
        twin.Settle();
        Assert.Single(Sent(twin.A));
        twin.SaveIntoB();
        twin.AssertSame("held");
        twin.Both(device => ((VirtioNet)device).TransmitLimiter.Update(RateLimitSettings.Unlimited));
        twin.Write(MmioTransport.RegQueueNotify, 1);
        twin.AssertSame("released");
        Assert.Equal(Sent(twin.A).Skip(1), Sent(twin.B));
    }
}
