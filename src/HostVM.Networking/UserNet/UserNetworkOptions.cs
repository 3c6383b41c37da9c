using System.Net;

namespace HostVM.Networking.UserNet;

/// <summary>
/// How a <see cref="UserNetwork"/> is set up. The defaults are QEMU's <c>-netdev user</c> network:
/// 10.0.2.0/24, gateway and host at 10.0.2.2, DNS at 10.0.2.3, guests from 10.0.2.15.
/// </summary>
public sealed record UserNetworkOptions
{
    public IPAddress Gateway { get; init; } = IPAddress.Parse("10.0.2.2");

    public IPAddress DnsAddress { get; init; } = IPAddress.Parse("10.0.2.3");

    /// <summary>
    /// The guest's address: the same as <see cref="FirstGuestAddress"/> (setting one sets the other). With one
    /// guest it is the address DHCP gives it; it is also where host forwards without a guest address go.
    /// </summary>
    public IPAddress GuestAddress
    {
        get => FirstGuestAddress;
        init => FirstGuestAddress = value;
    }

    /// <summary>The first address DHCP leases (10.0.2.15); the next client gets the next free one.</summary>
    public IPAddress FirstGuestAddress { get; init; } = IPAddress.Parse("10.0.2.15");

    /// <summary>The last address DHCP leases; null means the last host address of the subnet (10.0.2.254).</summary>
    public IPAddress? LastGuestAddress { get; init; }

    public IPAddress SubnetMask { get; init; } = IPAddress.Parse("255.255.255.0");

    /// <summary>The MAC the gateway and DNS addresses answer ARP with (QEMU's 52:55:0a:00:02:02).</summary>
    public MacAddress GatewayMac { get; init; } = new(0x5255_0a00_0202UL);

    /// <summary>Where guests may go: by default anything but the host itself (see <see cref="EgressPolicy"/>).</summary>
    public EgressPolicy Egress { get; init; } = EgressPolicy.UserMode();

    /// <summary>Ports on the host forwarded into the guests, as in <c>hostfwd=</c>.</summary>
    public IReadOnlyList<HostForward> HostForwards { get; init; } = [];

    /// <summary>
    /// Where DNS queries sent to <see cref="DnsAddress"/> go. Null: the first <c>nameserver</c> in
    /// <see cref="ResolvConfPath"/>; when that file names none, A queries are answered from the
    /// host's own resolver (System.Net.Dns) and other query types get an empty answer.
    /// </summary>
    public IPEndPoint? DnsServer { get; init; }

    public string ResolvConfPath { get; init; } = "/etc/resolv.conf";

    public TimeSpan DhcpLeaseTime { get; init; } = TimeSpan.FromDays(1);

    /// <summary>More guest connections than this are refused with RST (a hostile guest cannot exhaust host sockets).</summary>
    public int MaxTcpConnections { get; init; } = 1024;

    /// <summary>More connections than this from one guest (its MAC, whatever addresses it sends from) are refused with RST, so one guest cannot use up <see cref="MaxTcpConnections"/>.</summary>
    public int MaxTcpConnectionsPerGuest { get; init; } = 512;

    public int MaxUdpFlows { get; init; } = 256;

    /// <summary>More UDP flows than this from one guest (its MAC, whatever addresses it sends from) are dropped, so one guest cannot use up <see cref="MaxUdpFlows"/>.</summary>
    public int MaxUdpFlowsPerGuest { get; init; } = 128;

    /// <summary>Bytes buffered per TCP connection and direction; also the receive window offered to the guest.</summary>
    public int TcpBufferSize { get; init; } = 128 * 1024;

    public TimeSpan UdpIdleTimeout { get; init; } = TimeSpan.FromSeconds(60);
}
