using System.Net;
using System.Net.Sockets;
using HostVM.Networking.UserNet;

namespace HostVM.Networking.Tests.UserNet;

/// <summary>Forwards added and removed while the network runs, aimed at a guest NIC whose address is its DHCP lease (the daemon's forwards).</summary>
public class DynamicForwardTests
{
    private static readonly MacAddress Other = MacAddress.Parse("52:54:00:aa:bb:cc");

    [Fact]
    public async Task AForwardToANicGoesToItsLeaseAndIsRefusedWhileItHasNone()
    {
        using var guest = new FakeGuest(new UserNetworkOptions { Egress = ToHost.Policy });
        var bound = guest.Network.AddForward(new HostForward(HostForwardProtocol.Tcp, IPAddress.Loopback, 0, null, 8022) { GuestMac = guest.Mac });
        Assert.NotEqual(0, bound.HostPort);
        Assert.Equal(bound, Assert.Single(guest.Network.BoundForwards));

        // No lease yet: the host client is reset (while it connects or when it reads), and that is counted.
        using (var early = new TcpClient())
        {
            var reset = await Record.ExceptionAsync(async () =>
            {
                await early.ConnectAsync(IPAddress.Loopback, bound.HostPort);
                _ = await early.GetStream().ReadAsync(new byte[1]);
            });
            Assert.True(reset is SocketException or IOException, $"expected a reset, got {reset?.ToString() ?? "a connection"}");
        }

        Assert.Equal(1, guest.Network.Statistics.ForwardsUnreachable);
        Assert.Null(guest.TryTake(0));

        // Another NIC takes the pool's first address, so the guest's lease is the second: a forward by address would miss it.
        LeaseFor(guest, Other, 7);
        uint address = DhcpMessages.Lease(guest, 8);
        Assert.NotEqual(Packets.Guest, address);

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, bound.HostPort);
        var syn = guest.WaitFor(f => f.IsTcp && f.Has(Packets.Syn));
        Assert.Equal(address, syn.IpDestination);
        Assert.Equal(8022, syn.DestinationPort);
        var connection = GuestTcp.Accept(guest, syn);
        connection.Send("hello"u8);
        var buffer = new byte[5];
        await TcpNatTests.ReadExactlyAsync(client.GetStream(), buffer, buffer.Length);
        Assert.Equal("hello"u8.ToArray(), buffer);
    }

    [Fact]
    public async Task RemovingAForwardClosesItsPortOnlyAndLeavesItsConnectionsAndOtherForwards()
    {
        using var guest = new FakeGuest(new UserNetworkOptions { Egress = ToHost.Policy });
        DhcpMessages.Lease(guest, 1);
        var first = guest.Network.AddForward(new HostForward(HostForwardProtocol.Tcp, IPAddress.Loopback, 0, null, 80) { GuestMac = guest.Mac });
        var second = guest.Network.AddForward(new HostForward(HostForwardProtocol.Udp, IPAddress.Loopback, 0, null, 53) { GuestMac = guest.Mac });

        using var open = new TcpClient();
        await open.ConnectAsync(IPAddress.Loopback, first.HostPort);
        var connection = GuestTcp.Accept(guest, guest.WaitFor(f => f.IsTcp && f.Has(Packets.Syn)));

        Assert.False(guest.Network.RemoveForward(HostForwardProtocol.Udp, first.HostPort)); // the protocol is part of the key
        Assert.True(guest.Network.RemoveForward(HostForwardProtocol.Tcp, first.HostPort));
        Assert.False(guest.Network.RemoveForward(HostForwardProtocol.Tcp, first.HostPort));
        Assert.Equal(second, Assert.Single(guest.Network.BoundForwards));

        using var late = new TcpClient();
        await Assert.ThrowsAsync<SocketException>(() => late.ConnectAsync(IPAddress.Loopback, first.HostPort));

        // The connection made before the removal still carries data both ways.
        connection.Send("still"u8);
        var buffer = new byte[5];
        await TcpNatTests.ReadExactlyAsync(open.GetStream(), buffer, buffer.Length);
        Assert.Equal("still"u8.ToArray(), buffer);
        await open.GetStream().WriteAsync("there"u8.ToArray());
        connection.RunUntil(() => connection.Received.Length == 5);

        // The UDP forward still works.
        using var udp = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        await udp.SendAsync("q"u8.ToArray(), new IPEndPoint(IPAddress.Loopback, second.HostPort));
        Assert.Equal(53, guest.WaitFor(f => f.IsUdp && f.DestinationPort == 53).DestinationPort);
    }

    [Fact]
    public void ABusyPortOrAClosedNetworkIsRefusedAndNothingIsAdded()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var guest = new FakeGuest(new UserNetworkOptions { Egress = ToHost.Policy });
        Assert.Throws<InvalidOperationException>(() => guest.Network.AddForward(new HostForward(HostForwardProtocol.Tcp, IPAddress.Loopback, port, null, 80)));
        Assert.Empty(guest.Network.BoundForwards);
        Assert.Throws<ArgumentException>(() => guest.Network.AddForward(new HostForward(HostForwardProtocol.Tcp, IPAddress.Loopback, 0, IPAddress.Parse("10.0.2.15"), 80) { GuestMac = guest.Mac }));

        guest.Dispose();
        Assert.Throws<ObjectDisposedException>(() => guest.Network.AddForward(new HostForward(HostForwardProtocol.Tcp, IPAddress.Loopback, 0, null, 80)));
    }

    /// <summary>DISCOVER and REQUEST for another NIC, so that it holds an address.</summary>
    private static void LeaseFor(FakeGuest guest, MacAddress mac, uint xid)
    {
        guest.Send(DhcpMessages.Build(DhcpMessages.Discover, xid, 0, client: mac, from: mac));
        var offer = guest.WaitFor(f => f.IsUdp && f.DestinationPort == 68 && DhcpMessages.TypeOf(f) == DhcpMessages.Offer);
        guest.Send(DhcpMessages.Build(DhcpMessages.Request, xid, DhcpMessages.YourAddress(offer), client: mac, from: mac));
        Assert.Equal(DhcpMessages.Ack, DhcpMessages.TypeOf(guest.WaitFor(f => f.IsUdp && f.DestinationPort == 68 && DhcpMessages.TypeOf(f) != DhcpMessages.Offer)));
    }
}
