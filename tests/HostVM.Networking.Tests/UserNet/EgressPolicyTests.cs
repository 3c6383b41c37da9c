using System.Net;
using System.Net.Sockets;
using HostVM.Networking.UserNet;

namespace HostVM.Networking.Tests.UserNet;

/// <summary>
/// Where a NAT's guests may go. The decisions are checked as decisions (no packet is sent to any
/// address but this host's loopback); the NAT-level tests use loopback listeners only.
/// </summary>
public class EgressPolicyTests
{
    private const uint GatewayAddress = 0x0a00_0202;
    private static readonly uint HostLan = Address("203.0.113.5"); // stands for the host's own NIC

    private static uint Address(string text) => BitConverter.ToUInt32(IPAddress.Parse(text).GetAddressBytes().Reverse().ToArray());

    private static IReadOnlyCollection<uint> HostAddresses() => [Address("127.0.0.1"), HostLan];

    [Theory]
    [InlineData("127.0.0.1", false)]
    [InlineData("127.8.9.10", false)]
    [InlineData("203.0.113.5", false)] // the host's own address
    [InlineData("0.1.2.3", false)]
    [InlineData("224.0.0.1", false)]
    [InlineData("255.255.255.255", false)]
    [InlineData("10.1.2.3", true)] // one user's own VM may reach that user's LAN, as with QEMU
    [InlineData("169.254.169.254", true)]
    [InlineData("93.184.216.34", true)]
    public void UserModeRefusesTheHostAndNothingElse(string destination, bool allowed)
    {
        var policy = EgressPolicy.UserMode(hostAddresses: HostAddresses);
        Assert.Equal(allowed, policy.Allows(Address(destination), 80));
        Assert.Equal(allowed ? Address(destination) : null, policy.Resolve(Address(destination), 80, GatewayAddress));
    }

    [Fact]
    public void TheGatewayIsTheHostsLoopbackOnlyWhenAskedFor()
    {
        Assert.Null(EgressPolicy.UserMode(hostAddresses: HostAddresses).Resolve(GatewayAddress, 8080, GatewayAddress));
        Assert.Equal(0x7f00_0001u, EgressPolicy.UserMode(hostLoopback: true, HostAddresses).Resolve(GatewayAddress, 8080, GatewayAddress));
        Assert.Null(EgressPolicy.Restricted(hostAddresses: HostAddresses).Resolve(GatewayAddress, 8006, GatewayAddress));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("203.0.113.5")]
    [InlineData("10.0.0.1")]
    [InlineData("10.255.255.254")]
    [InlineData("172.16.0.1")]
    [InlineData("172.31.255.1")]
    [InlineData("192.168.1.1")]
    [InlineData("169.254.169.254")]
    [InlineData("100.64.0.1")]
    [InlineData("198.18.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("239.1.2.3")]
    public void RestrictedRefusesTheHostAndEveryRangeBehindIt(string destination)
    {
        Assert.False(EgressPolicy.Restricted(hostAddresses: HostAddresses).Allows(Address(destination), 443));
    }

    [Theory]
    [InlineData("93.184.216.34")]
    [InlineData("172.15.255.255")]
    [InlineData("172.32.0.1")]
    [InlineData("100.128.0.1")]
    public void RestrictedLetsThePublicInternetThrough(string destination)
    {
        Assert.True(EgressPolicy.Restricted(hostAddresses: HostAddresses).Allows(Address(destination), 443));
    }

    [Fact]
    public void AnAdminsRuleOpensExactlyWhatItNames()
    {
        var policy = EgressPolicy.Restricted([EgressRule.Parse("10.9.0.0/16:5432"), EgressRule.Parse("169.254.10.20"), EgressRule.Parse("0.0.0.0/0:9")], HostAddresses);
        Assert.True(policy.Allows(Address("10.9.200.1"), 5432));
        Assert.False(policy.Allows(Address("10.9.200.1"), 22));
        Assert.False(policy.Allows(Address("10.10.0.1"), 5432));
        Assert.True(policy.Allows(Address("169.254.10.20"), 80));
        Assert.False(policy.Allows(Address("169.254.169.254"), 80));
        // Even a rule for everything cannot open the unroutable ranges.
        Assert.True(policy.Allows(Address("127.0.0.1"), 9));
        Assert.False(policy.Allows(Address("224.0.0.9"), 9));
        Assert.False(policy.Allows(Address("0.0.0.1"), 9));
    }

    [Theory]
    [InlineData("10.1.2.3:5432", "10.1.2.3:5432")]
    [InlineData("192.168.50.0/24", "192.168.50.0/24")]
    [InlineData(" 203.0.113.9 ", "203.0.113.9")]
    [InlineData("0.0.0.0/0:53", "0.0.0.0/0:53")]
    public void RulesParseAndPrintBack(string text, string printed) => Assert.Equal(printed, EgressRule.Parse(text).ToString());

    [Theory]
    [InlineData("10.1.2.3:0", "port")]
    [InlineData("10.1.2.3:70000", "port")]
    [InlineData("10.1.2.0/33", "prefix")]
    [InlineData("10.1.2.1/24", "beyond the /24 prefix")]
    [InlineData("example.com:80", "not an IPv4 destination")]
    [InlineData("::1", "not an IPv4 destination")]
    [InlineData("10.1", "not an IPv4 destination")]
    public void BadRulesSayWhatIsWrong(string text, string message) =>
        Assert.Contains(message, Assert.Throws<FormatException>(() => EgressRule.Parse(text)).Message, StringComparison.Ordinal);

    [Fact]
    public async Task ByDefaultTheGatewayDoesNotReachTheHost()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        using var udpListener = new UdpClient(new IPEndPoint(IPAddress.Loopback, port));
        using var guest = new FakeGuest();

        var answer = GuestTcp.SendSyn(guest, 41000, Packets.Gateway, port);
        Assert.True(answer.Has(Packets.Rst), "a refused connection is reset, as a closed port is");
        guest.Send(Packets.Udp(Packets.Guest, 5555, Packets.Gateway, port, "let me in"u8));
        guest.Send(Packets.Tcp(Packets.Guest, 41001, Packets.Loopback, port, 999, 0, Packets.Syn, 65535, [], [], guest.Mac));
        Assert.True(guest.WaitFor(f => f.IsTcp && f.DestinationPort == 41001).Has(Packets.Rst), "127.0.0.1 asked for directly is refused too");

        await Task.Delay(300);
        Assert.False(listener.Pending(), "nothing connected to the host's listener");
        Assert.Equal(0, udpListener.Available);
        Assert.Equal(3, guest.Network.Statistics.EgressRefused);
        Assert.Equal(0, guest.Network.Statistics.TcpConnections);
    }

    [Fact]
    public async Task AnAllowedDestinationIsReachedAndTheRuleCanChangeWhileTheNetworkRuns()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        using var guest = new FakeGuest(new UserNetworkOptions { Egress = EgressPolicy.Restricted() });

        Assert.True(GuestTcp.SendSyn(guest, 41010, Packets.Loopback, port).Has(Packets.Rst));

        guest.Network.Egress = EgressPolicy.Restricted([EgressRule.Parse($"127.0.0.1:{port}")]);
        var connection = GuestTcp.Connect(guest, 41011, Packets.Loopback, port);
        using var server = await listener.AcceptTcpClientAsync();
        connection.Send("allowed"u8);
        var buffer = new byte[16];
        int n = await server.GetStream().ReadAsync(buffer);
        Assert.Equal("allowed", System.Text.Encoding.ASCII.GetString(buffer, 0, n));

        // Another port of the same address is still refused.
        Assert.True(GuestTcp.SendSyn(guest, 41012, Packets.Loopback, (ushort)(port == 65535 ? 1 : port + 1)).Has(Packets.Rst));
    }
}
