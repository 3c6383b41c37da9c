using System.Buffers.Binary;
using HostVM.Networking.UserNet;

namespace HostVM.Networking.Tests.UserNet;

public class HostileGuestTests
{
    [Fact]
    public void RandomTruncatedAndCorruptedFramesNeverThrow()
    {
        using var guest = new FakeGuest(new UserNetworkOptions { Egress = ToHost.Policy, ResolvConfPath = "/nonexistent/resolv.conf" });
        var random = new Random(1234);
        var valid = new List<byte[]>
        {
            Packets.ArpRequest(Packets.Guest, Packets.Gateway),
            Packets.Tcp(Packets.Guest, 41000, Packets.Gateway, 1, 1, 0, Packets.Syn, 1000, [], [2, 4, 5, 180, 3, 3, 14, 0]),
            Packets.Tcp(Packets.Guest, 41001, 0x0808_0808, 80, 1, 5, Packets.Ack | Packets.Psh, 1000, new byte[100]),
            Packets.Udp(Packets.Guest, 41002, Packets.Dns, 53, new byte[40]),
            Packets.Udp(0, 68, 0xffff_ffff, 67, new byte[300]),
            Packets.IpFrame(Packets.Guest, Packets.Gateway, 1, [8, 0, 0xf7, 0xff, 0, 0, 0, 0]),
        };

        for (int i = 0; i < 5000; i++)
        {
            byte[] frame;
            switch (i % 5)
            {
                case 0:
                    frame = new byte[random.Next(0, 1600)];
                    random.NextBytes(frame);
                    break;
                case 1:
                    var source = valid[random.Next(valid.Count)];
                    frame = source.AsSpan(0, random.Next(0, source.Length + 1)).ToArray();
                    break;
                case 2:
                    // Corrupt the IP and transport headers (not the addresses), then fix the checksums,
                    // so the deeper parsers see odd lengths, flags and options rather than just bad sums.
                    frame = (byte[])valid[random.Next(valid.Count)].Clone();
                    for (int flips = random.Next(1, 4); flips > 0; flips--)
                    {
                        int at = random.Next(14, frame.Length);
                        if (at is < 26 or >= 34)
                        {
                            frame[at] = (byte)random.Next(256);
                        }
                    }

                    FixChecksums(frame);
                    break;
                default:
                    frame = (byte[])valid[random.Next(valid.Count)].Clone();
                    for (int flips = random.Next(1, 4); flips > 0; flips--)
                    {
                        frame[random.Next(14, frame.Length)] = (byte)random.Next(256);
                    }

                    break;
            }

            guest.Send(frame);
        }

        var stats = guest.Network.Statistics;
        Assert.Equal(5000, stats.FramesFromGuest);
        Assert.True(stats.TcpConnections <= 1024);
    }

    private static void FixChecksums(byte[] frame)
    {
        if (frame.Length < 34 || frame[12] != 8 || frame[13] != 0)
        {
            return;
        }

        int headerLength = (frame[14] & 0xf) * 4;
        if (headerLength < 20 || 14 + headerLength > frame.Length)
        {
            return;
        }

        frame[24] = 0;
        frame[25] = 0;
        ushort ip = Packets.Checksum(frame.AsSpan(14, headerLength));
        frame[24] = (byte)(ip >> 8);
        frame[25] = (byte)ip;
        var transport = frame.AsSpan(14 + headerLength);
        int checksumAt = frame[23] switch { 6 => 16, 17 => 6, 1 => 2, _ => -1 };
        if (checksumAt < 0 || transport.Length < checksumAt + 2)
        {
            return;
        }

        transport[checksumAt] = 0;
        transport[checksumAt + 1] = 0;

        uint pseudo = frame[23] == 1 ? 0 : Packets.Pseudo(BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(26)), BinaryPrimitives.ReadUInt32BigEndian(frame.AsSpan(30)), frame[23], transport.Length);
        ushort sum = Packets.Checksum(transport, pseudo);
        transport[checksumAt] = (byte)(sum >> 8);
        transport[checksumAt + 1] = (byte)sum;
    }

    /// <summary>A host listener for the guests' connections to reach (through the gateway, as ToHost allows).</summary>
    private static System.Net.Sockets.TcpListener ListenOnLoopback(out ushort port)
    {
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        port = (ushort)((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        return listener;
    }

    [Fact]
    public void TooManyConnectionsAreRefused()
    {
        using var listener = ListenOnLoopback(out ushort target);
        using var guest = new FakeGuest(new UserNetworkOptions { Egress = ToHost.Policy, MaxTcpConnections = 4 });
        for (ushort port = 1; port <= 10; port++)
        {
            guest.Send(Packets.Tcp(Packets.Guest, (ushort)(42000 + port), Packets.Gateway, target, 1, 0, Packets.Syn, 1000, []));
        }

        Assert.Equal(4, guest.Network.Statistics.TcpConnections);
        Assert.Equal(6, guest.Network.Statistics.FlowsRefused);
        var reset = guest.WaitFor(f => f.IsTcp && f.Has(Packets.Rst));
        Assert.Equal(42005, reset.DestinationPort);
    }

    [Fact]
    public void AGuestSendingFromMoreAddressesGetsNoMoreConnections()
    {
        // A guest may use any free address of the subnet; its share of host sockets goes with its MAC.
        using var listener = ListenOnLoopback(out ushort target);
        using var guest = new FakeGuest(new UserNetworkOptions { Egress = ToHost.Policy, MaxTcpConnections = 20, MaxTcpConnectionsPerGuest = 3 });
        for (uint address = Packets.Guest; address < Packets.Guest + 4; address++)
        {
            guest.Send(Packets.Tcp(address, 42300, Packets.Gateway, target, 1, 0, Packets.Syn, 1000, []));
        }

        Assert.Equal(3, guest.Network.Statistics.TcpConnections);
        Assert.Equal(1, guest.Network.Statistics.FlowsRefused);
        var reset = guest.WaitFor(f => f.IsTcp && f.Has(Packets.Rst));
        Assert.Equal(Packets.Guest + 3, reset.IpDestination);
    }

    [Fact]
    public void UdpFlowsAreBoundedPerGuestWhateverItsAddressAndPerNetwork()
    {
        using var sink = new System.Net.Sockets.UdpClient(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        ushort target = (ushort)((System.Net.IPEndPoint)sink.Client.LocalEndPoint!).Port;
        using var guest = new FakeGuest(new UserNetworkOptions { Egress = ToHost.Policy, MaxUdpFlows = 3, MaxUdpFlowsPerGuest = 2 });
        guest.Send(Packets.Udp(Packets.Guest, 5001, Packets.Gateway, target, "a"u8));
        guest.Send(Packets.Udp(Packets.Guest + 1, 5001, Packets.Gateway, target, "b"u8));
        guest.Send(Packets.Udp(Packets.Guest + 2, 5001, Packets.Gateway, target, "c"u8)); // a third flow of the same MAC
        Assert.Equal(2, guest.Network.Statistics.UdpFlows);
        Assert.Equal(1, guest.Network.Statistics.FlowsRefused);

        // The flows it holds still carry its datagrams: the refusal costs only the new flow.
        guest.Send(Packets.Udp(Packets.Guest, 5001, Packets.Gateway, target, "d"u8));
        Assert.Equal(2, guest.Network.Statistics.UdpFlows);

        var second = MacAddress.Parse("52:54:00:00:00:43");
        guest.Send(Packets.Udp(0x0a00_0243, 5002, Packets.Gateway, target, "e"u8, from: second));
        guest.Send(Packets.Udp(0x0a00_0243, 5003, Packets.Gateway, target, "f"u8, from: second)); // the network's third is taken
        Assert.Equal(3, guest.Network.Statistics.UdpFlows);
        Assert.Equal(2, guest.Network.Statistics.FlowsRefused);
    }

    [Fact]
    public void OneGuestCannotTakeEveryConnection()
    {
        using var listener = ListenOnLoopback(out ushort target);
        using var guest = new FakeGuest(new UserNetworkOptions { Egress = ToHost.Policy, MaxTcpConnections = 10, MaxTcpConnectionsPerGuest = 3 });
        for (ushort port = 1; port <= 5; port++)
        {
            guest.Send(Packets.Tcp(Packets.Guest, (ushort)(42100 + port), Packets.Gateway, target, 1, 0, Packets.Syn, 1000, []));
        }

        Assert.Equal(3, guest.Network.Statistics.TcpConnections);
        var reset = guest.WaitFor(f => f.IsTcp && f.Has(Packets.Rst));
        Assert.Equal(42104, reset.DestinationPort);

        // Another guest on the same network still gets in, and its answer goes to its own MAC.
        var other = MacAddress.Parse("52:54:00:00:00:42");
        guest.Send(Packets.Tcp(0x0a00_0242, 42200, Packets.Gateway, target, 1, 0, Packets.Syn, 1000, [], from: other));
        var synAck = guest.WaitFor(f => f.IsTcp && f.DestinationPort == 42200);
        Assert.True(synAck.Has(Packets.Syn) && synAck.Has(Packets.Ack));
        Assert.Equal(other, synAck.Destination);
        Assert.Equal(4, guest.Network.Statistics.TcpConnections);
    }

    [Fact]
    public void SprayedSourceAddressesAndClientMacsDoNotGrowTheTables()
    {
        // A /16, so there are far more guest addresses than the learned-address table holds.
        var options = new UserNetworkOptions
        {
            Egress = ToHost.Policy,
            Gateway = System.Net.IPAddress.Parse("10.0.0.2"),
            DnsAddress = System.Net.IPAddress.Parse("10.0.0.3"),
            FirstGuestAddress = System.Net.IPAddress.Parse("10.0.0.15"),
            SubnetMask = System.Net.IPAddress.Parse("255.255.0.0"),
        };
        using var guest = new FakeGuest(options);
        for (uint i = 0; i < 3000; i++)
        {
            var mac = new MacAddress(0x5254_0100_0000UL + i);
            guest.Send(Packets.IpFrame(0x0a00_1000 + i, 0x0a00_0002, 253, [1, 2, 3, 4], mac));
        }

        Assert.Equal(1024, guest.Network.Statistics.KnownGuestAddresses);

        for (uint i = 0; i < 5000; i++)
        {
            var mac = new MacAddress(0x5254_0200_0000UL + i);
            guest.Send(DhcpMessages.Build(DhcpMessages.Discover, i, 0, client: mac));
        }

        // Offers hold addresses only briefly, but while they do the table stops at its bound.
        Assert.Equal(5000 - 4096, guest.Network.Statistics.DhcpPoolExhausted);
        Assert.Equal(0, guest.Network.Statistics.DhcpLeases);
    }

    [Fact]
    public void AGuestPosingAsTheGatewayIsIgnored()
    {
        using var guest = new FakeGuest(ToHost.Options);
        var echo = new byte[8];
        echo[0] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(2), Packets.Checksum(echo));
        guest.Send(Packets.IpFrame(Packets.Guest, Packets.Gateway, 1, echo, Packets.GatewayMac));
        guest.Send(DhcpMessages.Build(DhcpMessages.Discover, 1, 0, client: Packets.GatewayMac));
        guest.Send(Packets.ArpRequest(0x0a00_0242, Packets.Gateway, Packets.GatewayMac));
        Assert.Null(guest.TryTake(300));
        Assert.Equal(0, guest.Network.Statistics.KnownGuestAddresses);
        Assert.Equal(3, guest.Network.Statistics.FramesDropped);
    }

    [Fact]
    public void ADhcpClientAsksOnlyForItsOwnMac()
    {
        // chaddr is the guest's word; the frame's source is what its NIC sent. One guest asking for
        // made-up MACs could drain the pool, or RELEASE another guest's lease.
        using var guest = new FakeGuest(ToHost.Options);
        var other = MacAddress.Parse("52:54:00:99:99:99");
        guest.Send(DhcpMessages.Build(DhcpMessages.Discover, 1, 0, client: other, from: Packets.GuestMac));
        Assert.Null(guest.TryTake(300));
        Assert.Equal(1, guest.Network.Statistics.FramesDropped);

        guest.Send(DhcpMessages.Build(DhcpMessages.Discover, 2, 0));
        Assert.Equal(DhcpMessages.Offer, DhcpMessages.TypeOf(guest.WaitFor(f => f.IsUdp && f.DestinationPort == 68)));
    }
}
