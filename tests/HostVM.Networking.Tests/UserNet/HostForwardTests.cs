using System.Net;
using System.Net.Sockets;
using HostVM.Networking.UserNet;

namespace HostVM.Networking.Tests.UserNet;

public class HostForwardTests
{
    [Theory]
    [InlineData("tcp:127.0.0.1:8080-:80", HostForwardProtocol.Tcp, "127.0.0.1", 8080, null, 80)]
    [InlineData("tcp::2222-10.0.2.15:22", HostForwardProtocol.Tcp, "127.0.0.1", 2222, "10.0.2.15", 22)]
    [InlineData(":0.0.0.0:0-:22", HostForwardProtocol.Tcp, "0.0.0.0", 0, null, 22)]
    [InlineData("udp:127.0.0.1:5353-:53", HostForwardProtocol.Udp, "127.0.0.1", 5353, null, 53)]
    public void ParsesQemuForms(string text, HostForwardProtocol protocol, string hostAddress, int hostPort, string? guestAddress, int guestPort)
    {
        var forward = HostForward.Parse(text);
        Assert.Equal(protocol, forward.Protocol);
        Assert.Equal(IPAddress.Parse(hostAddress), forward.HostAddress);
        Assert.Equal(hostPort, forward.HostPort);
        Assert.Equal(guestAddress is null ? null : IPAddress.Parse(guestAddress), forward.GuestAddress);
        Assert.Equal(guestPort, forward.GuestPort);
    }

    [Theory]
    [InlineData("tcp:127.0.0.1:8080")]
    [InlineData("tcp:127.0.0.1:80x-:80")]
    [InlineData("tcp:127.0.0.1:70000-:80")]
    [InlineData("tcp:127.0.0.1:8080-:0")]
    [InlineData("tcp:nothost:8080-:80")]
    [InlineData("tcp:8080-80")]
    [InlineData("")]
    public void RejectsMalformedForwardsWithAnExplanation(string text)
    {
        var error = Assert.Throws<FormatException>(() => HostForward.Parse(text));
        Assert.Contains("tcp:127.0.0.1:8080-:80", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostClientOnAForwardedPortReachesTheGuest()
    {
        var options = new UserNetworkOptions { Egress = ToHost.Policy, HostForwards = [HostForward.Parse("tcp:127.0.0.1:0-:8022")] };
        using var guest = new FakeGuest(options);
        int port = guest.Network.BoundForwardPorts[0];
        Assert.NotEqual(0, port);
        // The guest has spoken once (as after DHCP), so its MAC is known.
        guest.Send(Packets.ArpRequest(Packets.Guest, Packets.Gateway));

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var syn = guest.WaitFor(f => f.IsTcp && f.Has(Packets.Syn));
        Assert.Equal(Packets.Gateway, syn.IpSource);
        Assert.Equal(Packets.Guest, syn.IpDestination);
        Assert.Equal(8022, syn.DestinationPort);
        var connection = GuestTcp.Accept(guest, syn);

        var stream = client.GetStream();
        var request = TcpNatTests.Pattern(50_000, 21);
        await stream.WriteAsync(request);
        connection.RunUntil(() => connection.Received.Length == request.Length);
        Assert.Equal(request, connection.Received.ToArray());

        var response = TcpNatTests.Pattern(70_000, 22);
        connection.Send(response);
        var buffer = new byte[response.Length];
        await TcpNatTests.ReadExactlyAsync(stream, buffer, buffer.Length);
        Assert.Equal(response, buffer);

        client.Client.Shutdown(SocketShutdown.Send);
        connection.RunUntil(() => connection.FinReceived);
        connection.SendFin();
        connection.RunUntil(() => connection.AllAcknowledged);
        Assert.Equal(0, await stream.ReadAsync(buffer));
    }

    [Fact]
    public async Task UdpForwardCarriesDatagramsBothWays()
    {
        var options = new UserNetworkOptions { Egress = ToHost.Policy, HostForwards = [HostForward.Parse("udp:127.0.0.1:0-:5353")] };
        using var guest = new FakeGuest(options);
        guest.Send(Packets.ArpRequest(Packets.Guest, Packets.Gateway));
        using var client = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        await client.SendAsync("question"u8.ToArray(), new IPEndPoint(IPAddress.Loopback, guest.Network.BoundForwardPorts[0]));

        var datagram = guest.WaitFor(f => f.IsUdp);
        Assert.Equal(Packets.Gateway, datagram.IpSource);
        Assert.Equal(5353, datagram.DestinationPort);
        Assert.Equal("question"u8.ToArray(), datagram.Data);
        guest.Send(Packets.Udp(Packets.Guest, 5353, Packets.Gateway, datagram.SourcePort, "answer"u8));

        using var timeout = new CancellationTokenSource(5000);
        var reply = await client.ReceiveAsync(timeout.Token);
        Assert.Equal("answer"u8.ToArray(), reply.Buffer);
    }

    [Fact]
    public async Task DisposeClosesForwardsAndConnections()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        var guest = new FakeGuest(new UserNetworkOptions { Egress = ToHost.Policy, HostForwards = [HostForward.Parse("tcp::0-:80")] });
        int forwarded = guest.Network.BoundForwardPorts[0];
        GuestTcp.Connect(guest, 40200, Packets.Gateway, port);
        using var server = await listener.AcceptTcpClientAsync();

        guest.Dispose();
        Assert.False(guest.Network.LinkUp);
        guest.Network.Send(Packets.ArpRequest(Packets.Guest, Packets.Gateway));
        using var timeout = new CancellationTokenSource(5000);
        try
        {
            Assert.Equal(0, await server.GetStream().ReadAsync(new byte[1], timeout.Token));
        }
        catch (IOException)
        {
            // Reset rather than closed: also gone.
        }

        using var client = new TcpClient();
        await Assert.ThrowsAsync<SocketException>(() => client.ConnectAsync(IPAddress.Loopback, forwarded));
    }

    [Fact]
    public void InconsistentOptionsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new UserNetwork(new UserNetworkOptions { Egress = ToHost.Policy, GuestAddress = IPAddress.Parse("192.168.1.15") }));
        Assert.Throws<ArgumentException>(() => new UserNetwork(new UserNetworkOptions { Egress = ToHost.Policy, TcpBufferSize = 10 }));
        Assert.Throws<ArgumentException>(() => new UserNetwork(new UserNetworkOptions { Egress = ToHost.Policy, LastGuestAddress = IPAddress.Parse("10.0.2.10") }));
        Assert.Throws<ArgumentException>(() => new UserNetwork(new UserNetworkOptions { Egress = ToHost.Policy, LastGuestAddress = IPAddress.Parse("10.0.2.255") }));
        Assert.Throws<ArgumentException>(() => new UserNetwork(new UserNetworkOptions { Egress = ToHost.Policy, MaxUdpFlowsPerGuest = -1 }));
        var toGateway = Assert.Throws<ArgumentException>(() => new UserNetwork(new UserNetworkOptions { Egress = ToHost.Policy, HostForwards = [HostForward.Parse("tcp::0-10.0.2.2:80")] }));
        Assert.Contains("10.0.2.2", toGateway.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new UserNetwork(new UserNetworkOptions { Egress = ToHost.Policy, HostForwards = [HostForward.Parse("udp::0-192.168.1.5:53")] }));
    }

    [Fact]
    public void GuestAddressIsTheFirstAddressOfThePool()
    {
        var options = new UserNetworkOptions { Egress = ToHost.Policy, GuestAddress = IPAddress.Parse("10.0.2.100") };
        Assert.Equal(IPAddress.Parse("10.0.2.100"), options.FirstGuestAddress);
        Assert.Equal(IPAddress.Parse("10.0.2.20"), (options with { FirstGuestAddress = IPAddress.Parse("10.0.2.20") }).GuestAddress);
        Assert.Null(options.LastGuestAddress);
    }

    [Fact]
    public void ABusyHostPortIsReportedClearly()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var options = new UserNetworkOptions { Egress = ToHost.Policy, HostForwards = [HostForward.Parse($"tcp:127.0.0.1:{port}-:80")] };
        var error = Assert.Throws<InvalidOperationException>(() => new UserNetwork(options));
        Assert.Contains(port.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message, StringComparison.Ordinal);
    }
}
