using System.Net.Sockets;
using HostVM.Networking.Switch;

namespace HostVM.Networking.Tests.Switch;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SwitchPortTests : IDisposable
{
    private static readonly MacAddress MacA = MacAddress.Parse("52:54:00:00:00:0a");
    private static readonly MacAddress MacB = MacAddress.Parse("52:54:00:00:00:0b");
    private static readonly MacAddress MacC = MacAddress.Parse("52:54:00:00:00:0c");

    private readonly string runtime = Directory.CreateTempSubdirectory("hostvm-net-").FullName;
    private readonly List<IDisposable> cleanup = [];

    public void Dispose()
    {
        foreach (var item in cleanup)
        {
            item.Dispose();
        }

        Directory.Delete(runtime, recursive: true);
    }

    [Fact]
    public void BroadcastReachesEveryOtherPort()
    {
        var (a, b, c) = ThreePorts(out var inA, out var inB, out var inC);
        byte[] frame = Frame(MacAddress.Broadcast, MacA, 1);

        a.Send(frame);

        Assert.Equal(frame, inB.Expect());
        Assert.Equal(frame, inC.Expect());
        inA.ExpectNothing();
        Assert.NotNull(b);
        Assert.NotNull(c);
    }

    [Fact]
    public void UnicastGoesOnlyToTheLearnedPort()
    {
        var (a, b, _) = ThreePorts(out var inA, out var inB, out var inC);

        // Unknown yet: flooded.
        b.Send(Frame(MacA, MacB, 1));
        Assert.Equal(1, inA.Expect()[14]);
        Assert.Equal(1, inC.Expect()[14]);

        // A's reply teaches B where A lives, and B's frame taught A where B lives.
        a.Send(Frame(MacB, MacA, 2));
        Assert.Equal(2, inB.Expect()[14]);
        inC.ExpectNothing();

        b.Send(Frame(MacA, MacB, 3));
        Assert.Equal(3, inA.Expect()[14]);
        inC.ExpectNothing();
    }

    [Fact]
    public void MacMovesToThePortItWasLastSeenOn()
    {
        var (a, b, c) = ThreePorts(out var inA, out var inB, out var inC);
        b.Send(Frame(MacAddress.Broadcast, MacB, 1));
        inA.Expect();
        inC.Expect();

        // The VM with MacB now sits behind port C (migrated, or the NIC was re-attached).
        c.Send(Frame(MacAddress.Broadcast, MacB, 2));
        inA.Expect();
        inB.Expect();

        a.Send(Frame(MacB, MacA, 3));
        Assert.Equal(3, inC.Expect()[14]);
        inB.ExpectNothing();
    }

    [Fact]
    public void ADisposedPortIsForgottenAndItsFileRemoved()
    {
        var (a, b, _) = ThreePorts(out var inA, out _, out var inC);
        b.Send(Frame(MacAddress.Broadcast, MacB, 1));
        inA.Expect();
        inC.Expect();
        Assert.Equal(1, a.LearnedMacCount);

        string bPath = b.SocketPath;
        b.Dispose();
        Assert.False(File.Exists(bPath));
        Assert.False(b.LinkUp);

        // A still thinks MacB is behind B: the send fails, B is forgotten and the frame is flooded instead.
        a.Send(Frame(MacB, MacA, 2));
        Assert.Equal(2, inC.Expect()[14]);
        Assert.Equal(0, a.LearnedMacCount);
    }

    [Fact]
    public void StaleSocketFileOfADeadProcessIsDeleted()
    {
        var (a, _, _) = ThreePorts(out _, out var inB, out var inC);
        string stale = StaleSocketFile(a.SwitchDirectory);
        Assert.True(File.Exists(stale));

        // Wait out the directory cache so A sees the new file.
        Thread.Sleep(TimeSpan.FromMilliseconds(1100));
        a.Send(Frame(MacAddress.Broadcast, MacA, 1));

        inB.Expect();
        inC.Expect();
        Assert.False(File.Exists(stale));
    }

    [Fact]
    public void GarbageDoesNotStopTheReceiveLoop()
    {
        var (a, b, _) = ThreePorts(out _, out var inB, out _);
        using (var stranger = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified))
        {
            // An unnamed sender, a runt, an oversized datagram and one from outside the switch directory.
            var to = new UnixDomainSocketEndPoint(b.SocketPath);
            stranger.SendTo(new byte[] { 1, 2, 3 }, to);
            stranger.SendTo(Frame(MacB, MacA, 9), to);
            stranger.SendTo(new byte[9000], to);
            string outside = Path.Combine(runtime, "outside.sock");
            using var bound = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            bound.Bind(new UnixDomainSocketEndPoint(outside));
            bound.SendTo(Frame(MacB, MacA, 9), to);
        }

        // From a real port: runt and oversized frames are dropped on arrival.
        using (var raw = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified))
        {
            raw.Bind(new UnixDomainSocketEndPoint(Path.Combine(a.SwitchDirectory, "raw.sock")));
            raw.SendTo(new byte[5], new UnixDomainSocketEndPoint(b.SocketPath));
            raw.SendTo(new byte[IPacketPort.MaxFrameSize + 1], new UnixDomainSocketEndPoint(b.SocketPath));
        }

        a.Send(Frame(MacB, MacA, 4));
        Assert.Equal(4, inB.Expect()[14]);
        inB.ExpectNothing();
        Assert.True(b.DroppedFrames >= 5, $"dropped {b.DroppedFrames}");
    }

    [Fact]
    public void OversizedAndRuntFramesAreNotSent()
    {
        var (a, _, _) = ThreePorts(out _, out var inB, out var inC);
        a.Send(new byte[IPacketPort.MaxFrameSize + 1]);
        a.Send(new byte[13]);
        inB.ExpectNothing();
        inC.ExpectNothing();
        Assert.Equal(2, a.DroppedFrames);

        byte[] largest = new byte[IPacketPort.MaxFrameSize];
        Frame(MacAddress.Broadcast, MacA, 5).CopyTo(largest, 0);
        a.Send(largest);
        Assert.Equal(IPacketPort.MaxFrameSize, inB.Expect().Length);
    }

    [Fact]
    public void AStuckPortDoesNotSlowFloods()
    {
        var (a, _, _) = ThreePorts(out _, out var inB, out _);

        // Opened, never started: its queue fills after a few frames and stays full.
        var stuck = SwitchPort.Open("lan", runtime);
        cleanup.Add(stuck);
        Thread.Sleep(TimeSpan.FromMilliseconds(1100));

        for (int i = 0; i < 500; i++)
        {
            a.Send(Frame(MacAddress.Broadcast, MacA, 1));
        }

        // Waiting for the stuck queue every time would cap everyone's floods at one a wait (1 ms): all 500
        // would wait. Counted, not timed: once the stuck port is found congested no flood waits for it
        // again; the few waits left are for the live ports' short queues (10 datagrams) in this burst.
        Assert.True(a.QueueWaits < 100, $"{a.QueueWaits} of 500 floods waited for a full queue");
        Assert.True(a.DroppedFrames > 400, $"{a.DroppedFrames} frames dropped to the stuck port");
        Assert.NotNull(inB.Expect());
    }

    [Fact]
    public void APortInAnotherProcessNeedsOnlyPlainDatagrams()
    {
        // The wire format is one Ethernet frame per datagram, nothing else: a few lines of Python can join.
        const string Peer = """
            import os, socket, sys
            d = sys.argv[1]
            me = os.path.join(d, "%d-py.sock" % os.getpid())
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind(me)
            frame = bytes.fromhex("ffffffffffff" "525400000099" "88b5") + b"py" + bytes(44)
            for name in os.listdir(d):
                if name.endswith(".sock") and os.path.join(d, name) != me:
                    s.sendto(frame, os.path.join(d, name))
            s.settimeout(10)
            data, sender = s.recvfrom(2000)
            print(data[14:16].decode(), sender == os.path.join(d, sys.argv[2]), flush=True)
            os.unlink(me)
            """;
        Assert.SkipUnless(File.Exists("/usr/bin/python3"), "the peer is a Python program and /usr/bin/python3 is missing: scripts/deps.sh installs it");

        var a = Port("lan", out var inA);
        var start = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(Peer);
        start.ArgumentList.Add(a.SwitchDirectory);
        start.ArgumentList.Add(Path.GetFileName(a.SocketPath));
        using var python = System.Diagnostics.Process.Start(start)!;

        byte[] hello = inA.Expect();
        Assert.Equal("52:54:00:00:00:99", MacAddress.FromBytes(hello.AsSpan(6)).ToString());
        Assert.Equal("py"u8.ToArray(), hello[14..16]);

        // Learned: the reply is unicast straight to the Python socket.
        var reply = Frame(MacAddress.Parse("52:54:00:00:00:99"), MacA, (byte)'h');
        reply[15] = (byte)'i';
        a.Send(reply);
        Assert.Equal("hi True", python.StandardOutput.ReadLine());
        Assert.True(python.WaitForExit(10_000));
    }

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("a/b")]
    [InlineData("with space")]
    [InlineData("ünïcode")]
    [InlineData("x12345678901234567890123456789012345678901234567890123456789012345")]
    public void InvalidNamesAreRejected(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => SwitchPort.Open(name, runtime));
        Assert.Contains("not a valid switch name", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SwitchDirectoryFollowsTheRuntimeDirectory()
    {
        Assert.Equal(Path.Combine(runtime, "switches", "lan-1.a_b"), SwitchLocation.SwitchDirectory("lan-1.a_b", runtime));
        using var port = SwitchPort.Open("lan0", runtime);
        Assert.StartsWith(Path.Combine(runtime, "switches", "lan0") + "/", port.SocketPath, StringComparison.Ordinal);
        Assert.True(File.Exists(port.SocketPath));
        Assert.Equal(
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute,
            File.GetUnixFileMode(port.SwitchDirectory));
        Assert.Throws<InvalidOperationException>(() =>
        {
            port.Start(new FrameCollector());
            port.Start(new FrameCollector());
        });
    }

    [Fact]
    public void SeparateSwitchesDoNotMeet()
    {
        var a = Port("red", out _);
        Port("blue", out var inBlue);
        a.Send(Frame(MacAddress.Broadcast, MacA, 1));
        inBlue.ExpectNothing();
    }

    [Fact]
    public void AReceiverThatThrowsCostsOneFrameNotTheReceiveThread()
    {
        // In the daemon the receiver is a network's NAT: an exception escaping into the switch's
        // thread would end the whole process (the security review's F7).
        var a = Port("lan", out _);
        var b = SwitchPort.Open("lan", runtime);
        cleanup.Add(b);
        var received = new ThrowingOnMarker(3);
        b.Start(received);
        for (byte marker = 1; marker <= 5; marker++)
        {
            a.Send(Frame(MacAddress.Broadcast, MacA, marker));
        }

        Assert.Equal([1, 2, 4, 5], received.Take(4));
        Assert.Equal(1, b.DroppedFrames);
    }

    private sealed class ThrowingOnMarker(byte bad) : IFrameReceiver
    {
        private readonly System.Collections.Concurrent.BlockingCollection<byte> markers = [];

        public bool Receive(ReadOnlySpan<byte> frame)
        {
            if (frame[14] == bad)
            {
                throw new System.Net.Sockets.SocketException(24); // EMFILE, as a NAT out of descriptors once threw
            }

            markers.Add(frame[14]);
            return true;
        }

        public byte[] Take(int count) =>
            [.. Enumerable.Range(0, count).Select(_ => markers.TryTake(out byte m, TimeSpan.FromSeconds(5)) ? m : throw new Xunit.Sdk.XunitException("a frame did not arrive"))];
    }

    private (SwitchPort A, SwitchPort B, SwitchPort C) ThreePorts(out FrameCollector inA, out FrameCollector inB, out FrameCollector inC) =>
        (Port("lan", out inA), Port("lan", out inB), Port("lan", out inC));

    private SwitchPort Port(string name, out FrameCollector received)
    {
        var port = SwitchPort.Open(name, runtime);
        cleanup.Add(port);
        received = new FrameCollector();
        port.Start(received);
        return port;
    }

    private static byte[] Frame(MacAddress destination, MacAddress source, byte marker)
    {
        var frame = new byte[60];
        destination.CopyTo(frame);
        source.CopyTo(frame.AsSpan(6));
        frame[12] = 0x88;
        frame[13] = 0xb5; // local experimental EtherType
        frame[14] = marker;
        return frame;
    }

    /// <summary>A socket file with nothing bound to it, as a killed process leaves behind.</summary>
    private static string StaleSocketFile(string directory)
    {
        string bound = Path.Combine(directory, "dead-bound.sock");
        string stale = Path.Combine(directory, "999999-dead.sock");
        using (var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified))
        {
            socket.Bind(new UnixDomainSocketEndPoint(bound));

            // Renamed, the file outlives the socket: .NET only unlinks the path it bound.
            File.Move(bound, stale);
        }

        return stale;
    }
}
