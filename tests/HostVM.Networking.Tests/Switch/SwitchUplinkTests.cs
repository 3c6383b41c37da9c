using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using HostVM.Networking.Switch;
using HostVM.Networking.Tests.UserNet;
using HostVM.Networking.UserNet;

namespace HostVM.Networking.Tests.Switch;

/// <summary>
/// Several simulated guests (raw frames built here) on one switch share one user-mode NAT joined to it by a
/// <see cref="SwitchUplink"/>: each gets its own lease, reaches the host, and gets only its own answers.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SwitchUplinkTests : IDisposable
{
    private const string SwitchName = "nat";
    private const uint GuestA = 0x0a00_020f;
    private const uint GuestB = 0x0a00_0210;
    private static readonly MacAddress MacA = MacAddress.Parse("52:54:00:00:00:0a");
    private static readonly MacAddress MacB = MacAddress.Parse("52:54:00:00:00:0b");
    private static readonly MacAddress MacC = MacAddress.Parse("52:54:00:00:00:0c");

    private readonly string runtime = Directory.CreateTempSubdirectory("hostvm-uplink-").FullName;
    private readonly List<IDisposable> cleanup = [];

    public void Dispose()
    {
        // Guests first, so they check what they received before the NAT goes away.
        for (int i = cleanup.Count - 1; i >= 0; i--)
        {
            cleanup[i].Dispose();
        }

        Directory.Delete(runtime, recursive: true);
    }

    [Fact]
    public async Task TwoGuestsGetTheirOwnLeasesAndReachTheHostThroughOneNat()
    {
        using var listener = Listen(out ushort port);
        var (nat, uplink) = Nat();
        var (a, b) = TwoLeasedGuests();

        foreach (var guest in new[] { a, b })
        {
            guest.Send(Packets.ArpRequest(guest.Address, Packets.Gateway, guest.Mac));
            var reply = guest.WaitFor(f => f.EtherType == Packets.EtherArp && f.Source == Packets.GatewayMac);
            Assert.Equal(guest.Mac, reply.Destination);
            Assert.Equal(guest.Address, BinaryPrimitives.ReadUInt32BigEndian(reply.L3Payload.AsSpan(24)));
        }

        // Each guest opens a connection to the host's listener through the gateway; the host answers each by name.
        var echo = EchoServer(listener, clients: 2);
        var toA = GuestTcp.Connect(a, 40000, Packets.Gateway, port);
        var toB = GuestTcp.Connect(b, 40000, Packets.Gateway, port);
        toA.Send("guest a"u8);
        toB.Send("guest b"u8);
        toA.RunUntil(() => toA.Received.Length == "hello guest a".Length);
        toB.RunUntil(() => toB.Received.Length == "hello guest b".Length);
        Assert.Equal("hello guest a", Encoding.ASCII.GetString(toA.Received.ToArray()));
        Assert.Equal("hello guest b", Encoding.ASCII.GetString(toB.Received.ToArray()));
        await echo.WaitAsync(TimeSpan.FromSeconds(10));

        AssertNothingFor(b, a);
        AssertNothingFor(a, b);
        var stats = nat.Statistics;
        Assert.Equal(2, stats.DhcpLeases);
        Assert.Equal(2, stats.TcpConnections);
        Assert.Equal(0, stats.DhcpPoolExhausted);
        var link = uplink.Statistics;
        Assert.True(link.FramesFromSwitch > 0 && link.FramesToSwitch > 0, link.ToString());
        Assert.True(link.BytesFromSwitch > link.FramesFromSwitch && link.BytesToSwitch > link.FramesToSwitch, link.ToString());
    }

    [Fact]
    public async Task AGuestWithAStaticAddressIsLearnedFromItsFrames()
    {
        using var listener = Listen(out ushort port);
        var (nat, _) = Nat();
        var leased = Guest(MacA);
        DhcpMessages.Lease(leased, 1);
        var fixedGuest = Guest(MacC, address: 0x0a00_024d); // 10.0.2.77, never asked DHCP

        fixedGuest.Send(Packets.IpFrame(fixedGuest.Address, Packets.Gateway, 1, Echo(), fixedGuest.Mac));
        var pong = fixedGuest.WaitFor(f => f.Protocol == 1);
        Assert.Equal(MacC, pong.Destination);
        Assert.Equal(fixedGuest.Address, pong.IpDestination);

        await TalkToHostAsync(fixedGuest, listener, port, 41000, "static");
        AssertNothingFor(leased, fixedGuest);
        Assert.Equal(1, nat.Statistics.KnownGuestAddresses);

        // DHCP does not hand out the address the static guest uses.
        var next = Guest(MacB);
        Assert.NotEqual(fixedGuest.Address, DhcpMessages.Lease(next, 2));
    }

    [Fact]
    public void ALeaseIsStableAndAnotherGuestsAddressIsRefused()
    {
        Nat();
        var a = Guest(MacA);
        var b = Guest(MacB);
        var c = Guest(MacC);
        Assert.Equal(GuestA, DhcpMessages.Lease(a, 1));
        Assert.Equal(GuestB, DhcpMessages.Lease(b, 2));

        // Asking again, as after a reboot, gets the same address.
        Assert.Equal(GuestA, DhcpMessages.Lease(a, 3));
        Assert.Equal(GuestB, DhcpMessages.Lease(b, 4));

        // A client that asks for another client's address is refused; one that asks for a free one (its old
        // address, kept over a restart of the NAT) gets it.
        c.Send(DhcpMessages.Build(DhcpMessages.Request, 5, GuestA, client: MacC));
        Assert.Equal(DhcpMessages.Nak, DhcpMessages.TypeOf(DhcpMessages.NextReply(c, 5)));
        b.Send(DhcpMessages.Build(DhcpMessages.Request, 6, GuestA, client: MacB));
        Assert.Equal(DhcpMessages.Nak, DhcpMessages.TypeOf(DhcpMessages.NextReply(b, 6)));
        c.Send(DhcpMessages.Build(DhcpMessages.Request, 7, 0x0a00_0228, client: MacC));
        var ack = DhcpMessages.NextReply(c, 7);
        Assert.Equal(DhcpMessages.Ack, DhcpMessages.TypeOf(ack));
        Assert.Equal(0x0a00_0228u, DhcpMessages.YourAddress(ack));

        // A released address stays the client's to have back while nobody else needs it.
        a.Send(DhcpMessages.Build(DhcpMessages.Release, 8, 0, client: MacA, clientAddress: GuestA));
        Assert.Equal(GuestA, DhcpMessages.Lease(a, 9));
    }

    [Fact]
    public void AnExhaustedPoolMakesNoOfferAndCountsIt()
    {
        var (nat, _) = Nat(new UserNetworkOptions { Egress = ToHost.Policy, LastGuestAddress = IPAddress.Parse("10.0.2.16") });
        var a = Guest(MacA);
        var b = Guest(MacB);
        var c = Guest(MacC);
        Assert.Equal(GuestA, DhcpMessages.Lease(a, 1));
        Assert.Equal(GuestB, DhcpMessages.Lease(b, 2));

        c.Send(DhcpMessages.Build(DhcpMessages.Discover, 3, 0, client: MacC));
        Assert.Throws<TimeoutException>(() => DhcpMessages.NextReply(c, 3, timeoutMilliseconds: 500));
        Assert.Equal(1, nat.Statistics.DhcpPoolExhausted);

        // Once a's address is given back (and a never used it), c can have it.
        a.Send(DhcpMessages.Build(DhcpMessages.Release, 4, 0, client: MacA, clientAddress: GuestA));
        Assert.Equal(GuestA, DhcpMessages.Lease(c, 5));
        Assert.Equal(2, nat.Statistics.DhcpLeases);
    }

    [Fact]
    public void TheNatAnswersArpOnlyForItsOwnAddresses()
    {
        Nat();
        var (a, b) = TwoLeasedGuests();
        a.Send(Packets.ArpRequest(GuestA, Packets.Gateway, MacA));
        a.WaitFor(f => f.EtherType == Packets.EtherArp && f.Source == Packets.GatewayMac);

        // b asks for a: only a may answer (this simulated a stays silent), never the NAT.
        b.Send(Packets.ArpRequest(GuestB, GuestA, MacB));
        Assert.Throws<TimeoutException>(() => b.WaitFor(f => f.EtherType == Packets.EtherArp && f.Source == Packets.GatewayMac, 500));
        b.Send(Packets.ArpRequest(GuestB, Packets.Dns, MacB));
        var dns = b.WaitFor(f => f.EtherType == Packets.EtherArp && f.Source == Packets.GatewayMac);
        Assert.Equal(Packets.Dns, BinaryPrimitives.ReadUInt32BigEndian(dns.L3Payload.AsSpan(14)));
    }

    [Fact]
    public void FramesForAnotherHostAreIgnored()
    {
        using var listener = Listen(out ushort port);
        var (nat, _) = Nat();
        var a = Guest(MacA, GuestA);

        // A SYN to the gateway's address but another host's MAC (not yet learned, so the switch floods it to the NAT).
        var frame = Packets.Tcp(GuestA, 42000, Packets.Gateway, port, 1, 0, Packets.Syn, 1000, [], from: MacA);
        MacAddress.Parse("52:54:00:99:99:99").CopyTo(frame);
        a.Send(frame);
        Assert.True(SpinWait.SpinUntil(() => nat.Statistics.FramesIgnored >= 1, 5000));
        Assert.Null(a.TryTake(300));
        Assert.Equal(0, nat.Statistics.TcpConnections);
        Assert.Equal(0, nat.Statistics.FramesDropped);
    }

    [Fact]
    public async Task AGuestCannotSendFromAnotherGuestsLeasedAddress()
    {
        using var listener = Listen(out ushort port);
        var (nat, _) = Nat();
        var (a, b) = TwoLeasedGuests();

        // b pretends to be a: nothing is opened for it and nothing is sent anywhere.
        b.Send(Packets.Tcp(GuestA, 43000, Packets.Gateway, port, 1, 0, Packets.Syn, 1000, [], from: MacB));
        Assert.Null(b.TryTake(300));
        Assert.Equal(0, nat.Statistics.TcpConnections);

        // a itself still gets through, and its answers still go to a.
        await TalkToHostAsync(a, listener, port, 43001, "a");
        AssertNothingFor(b, a);
    }

    [Fact]
    public async Task HostForwardsGoToTheGuestTheyNameOrToTheFirst()
    {
        var options = new UserNetworkOptions
        {
            Egress = ToHost.Policy,
            HostForwards = [HostForward.Parse("tcp:127.0.0.1:0-:8080"), HostForward.Parse("tcp:127.0.0.1:0-10.0.2.16:8080")],
        };
        var (nat, _) = Nat(options);
        var (a, b) = TwoLeasedGuests();

        using var toFirst = new TcpClient();
        await toFirst.ConnectAsync(IPAddress.Loopback, nat.BoundForwardPorts[0]);
        var synA = a.WaitFor(f => f.IsTcp && f.Has(Packets.Syn));
        Assert.Equal((MacA, GuestA, (ushort)8080), (synA.Destination, synA.IpDestination, synA.DestinationPort));

        using var toB = new TcpClient();
        await toB.ConnectAsync(IPAddress.Loopback, nat.BoundForwardPorts[1]);
        var synB = b.WaitFor(f => f.IsTcp && f.Has(Packets.Syn));
        Assert.Equal((MacB, GuestB, (ushort)8080), (synB.Destination, synB.IpDestination, synB.DestinationPort));
        AssertNothingFor(a, b);
        AssertNothingFor(b, a);
    }

    [Fact]
    public void DisposingTheUplinkLeavesTheSwitchAndClosesTheNat()
    {
        var nat = new UserNetwork(ToHost.Options);
        var uplink = SwitchUplink.Open(SwitchName, nat, runtime);
        Assert.True(File.Exists(uplink.SocketPath));
        Assert.Equal(SwitchName, uplink.SwitchName);
        Assert.True(uplink.IsOpen);

        uplink.Dispose();
        uplink.Dispose();
        Assert.False(uplink.IsOpen);
        Assert.False(File.Exists(uplink.SocketPath));
        Assert.False(nat.LinkUp);
    }

    [Fact]
    public void APortThatIsAlreadyStartedIsRefusedAndLeavesNothingBehind()
    {
        using var nat = new UserNetwork(ToHost.Options);
        nat.Start(new FrameCollector());
        Assert.Throws<InvalidOperationException>(() => SwitchUplink.Open(SwitchName, nat, runtime));
        Assert.Empty(Directory.GetFiles(SwitchLocation.SwitchDirectory(SwitchName, runtime)));
        Assert.True(nat.LinkUp);
    }

    /// <summary>A listener on a free port of the host's 127.0.0.1.</summary>
    private static TcpListener Listen(out ushort port)
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        return listener;
    }

    /// <summary><paramref name="guest"/> connects to the host's listener through the NAT, sends <paramref name="message"/> and gets its answer.</summary>
    private static async Task TalkToHostAsync(FakeGuest guest, TcpListener listener, ushort port, ushort localPort, string message)
    {
        var echo = EchoServer(listener, clients: 1);
        var connection = GuestTcp.Connect(guest, localPort, Packets.Gateway, port);
        connection.Send(Encoding.ASCII.GetBytes(message));
        connection.RunUntil(() => connection.Received.Length == "hello ".Length + message.Length);
        Assert.Equal("hello " + message, Encoding.ASCII.GetString(connection.Received.ToArray()));
        await echo.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Accepts <paramref name="clients"/> connections; to each, answers "hello " and what it read.</summary>
    private static Task EchoServer(TcpListener listener, int clients) => Task.WhenAll(Enumerable.Range(0, clients).Select(async _ =>
    {
        using var client = await listener.AcceptTcpClientAsync();
        var stream = client.GetStream();
        var buffer = new byte[64];
        int n = await stream.ReadAsync(buffer);
        await stream.WriteAsync(Encoding.ASCII.GetBytes("hello " + Encoding.ASCII.GetString(buffer, 0, n)));
        // Keep the connection until the guest has had the answer (the test ends it).
        await Task.Delay(200);
    }));

    private static byte[] Echo()
    {
        var echo = new byte[16];
        echo[0] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(2), Packets.Checksum(echo));
        return echo;
    }

    [Fact]
    public void AGuestClaimingTheNatsAddressesIsDroppedAndCountedAndItsNeighboursNeverHearIt()
    {
        Nat();
        var a = Port(out _);
        var b = Port(out var inB);

        // The NAT's own answer for the gateway still reaches guests.
        b.Send(Packets.ArpRequest(GuestB, Packets.Gateway, MacB));
        byte[] answer = inB.Expect();
        Assert.Equal((Packets.GatewayMac, Packets.Gateway), (MacAddress.FromBytes(answer.AsSpan(22)), ArpSender(answer)));

        // "10.0.2.2 (and 10.0.2.3) is at A's MAC", as gratuitous ARP: never leaves A's port. A's claim to its
        // own address is sent after them and arrives, so anything sent before it would have arrived first.
        a.Send(Packets.ArpRequest(Packets.Gateway, Packets.Gateway, MacA));
        a.Send(Packets.ArpRequest(Packets.Dns, Packets.Dns, MacA));
        a.Send(Packets.ArpRequest(GuestA, GuestA, MacA));
        Assert.Equal(GuestA, ArpSender(inB.Expect()));
        Assert.Equal(2, a.FalseClaims);

        // A sender that does not check (any process of the switch's user can write to a port) is refused on arrival.
        using var raw = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        raw.Bind(new UnixDomainSocketEndPoint(Path.Combine(b.SwitchDirectory, "raw.sock")));
        raw.SendTo(Packets.ArpRequest(Packets.Gateway, GuestB, MacC), new UnixDomainSocketEndPoint(b.SocketPath));
        raw.SendTo(Packets.ArpRequest(0x0a00_0211, GuestB, MacC), new UnixDomainSocketEndPoint(b.SocketPath));
        Assert.Equal(0x0a00_0211u, ArpSender(inB.Expect()));
        Assert.Equal(1, b.FalseClaims);
    }

    /// <summary>The sender protocol address of an Ethernet/IPv4 ARP frame.</summary>
    private static uint ArpSender(byte[] frame) => BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(28));

    private SwitchPort Port(out FrameCollector received)
    {
        var port = SwitchPort.Open(SwitchName, runtime);
        cleanup.Add(port);
        received = new FrameCollector();
        port.Start(received);
        return port;
    }

    /// <summary>Asserts that nothing meant for <paramref name="other"/> (by MAC or by IP) reached <paramref name="guest"/>.</summary>
    private static void AssertNothingFor(FakeGuest guest, FakeGuest other) =>
        Assert.DoesNotContain(guest.AllReceived, f =>
            f.Destination == other.Mac || (f.EtherType == Packets.EtherIpv4 && f.IpDestination == other.Address));

    private (UserNetwork Nat, SwitchUplink Uplink) Nat(UserNetworkOptions? options = null)
    {
        var nat = new UserNetwork(options ?? ToHost.Options);
        var uplink = SwitchUplink.Open(SwitchName, nat, runtime);
        cleanup.Add(uplink);
        return (nat, uplink);
    }

    /// <summary>Guests a and b on the switch, leased 10.0.2.15 and 10.0.2.16 in that order.</summary>
    private (FakeGuest A, FakeGuest B) TwoLeasedGuests()
    {
        var a = Guest(MacA);
        var b = Guest(MacB);
        Assert.Equal(GuestA, DhcpMessages.Lease(a, 0x0a));
        Assert.Equal(GuestB, DhcpMessages.Lease(b, 0x0b));
        return (a, b);
    }

    private FakeGuest Guest(MacAddress mac, uint address = 0)
    {
        var guest = FakeGuest.OnSwitch(SwitchName, runtime, mac, address);
        cleanup.Add(guest);
        return guest;
    }
}
