using System.Net.NetworkInformation;

namespace HostVM.Networking.UserNet;

/// <summary>
/// Where a NAT's guests may open connections and send datagrams on the host's behalf. Every flow
/// leaves with the host's identity, so the destinations that are the host itself or sit behind it
/// are refused unless allowed:
/// <list type="bullet">
/// <item><see cref="UserMode"/> (<c>hostvm run --net user</c>, one user's own VM, like QEMU's
/// <c>-netdev user</c>): anything but the host; the gateway address reaches the host's loopback only
/// with <see cref="HostLoopback"/> (<c>host-loopback=on</c>).</item>
/// <item><see cref="Restricted"/> (the daemon's NAT networks, shared by tenants): also no private
/// (RFC 1918), shared (100.64/10) or link-local (169.254/16, cloud metadata) range, unless an
/// <see cref="Allow"/> rule names the destination.</item>
/// </list>
/// Loopback, the host's own addresses, 0/8, multicast and 240/4 are refused in both unless allowed;
/// the DNS address is not a destination but a proxy to the host's name server, and stays open.
/// </summary>
public sealed class EgressPolicy
{
    private static readonly TimeSpan HostAddressesLifetime = TimeSpan.FromSeconds(10);

    // (network, prefix length) in host order. No rule opens these: nothing valid lies there.
    private static readonly (uint Network, int Prefix)[] Unroutable =
    [
        (0x0000_0000, 8),  // "this network"
        (0xe000_0000, 4),  // multicast
        (0xf000_0000, 4),  // reserved, and the limited broadcast
    ];

    private static readonly (uint Network, int Prefix) LoopbackRange = (0x7f00_0000, 8);

    private static readonly (uint Network, int Prefix)[] PrivateRanges =
    [
        (0x0a00_0000, 8),  // 10/8
        (0x6440_0000, 10), // 100.64/10, carrier-grade NAT
        (0xa9fe_0000, 16), // 169.254/16, link-local: cloud metadata services live here
        (0xac10_0000, 12), // 172.16/12
        (0xc0a8_0000, 16), // 192.168/16
        (0xc000_0000, 24), // 192.0.0/24, IETF protocol assignments
        (0xc612_0000, 15), // 198.18/15, benchmarking
    ];

    private readonly Func<IReadOnlyCollection<uint>> _hostAddresses;
    private readonly Lock _lock = new();
    private HashSet<uint> _ownAddresses = [];
    private DateTime _ownAddressesAt = DateTime.MinValue;

    private EgressPolicy(bool hostLoopback, bool denyPrivate, IReadOnlyList<EgressRule> allow, Func<IReadOnlyCollection<uint>>? hostAddresses)
    {
        HostLoopback = hostLoopback;
        DenyPrivate = denyPrivate;
        Allow = allow;
        _hostAddresses = hostAddresses ?? HostIpv4Addresses;
    }

    /// <summary>The gateway address stands for the host's 127.0.0.1 (QEMU's default; opt-in here).</summary>
    public bool HostLoopback { get; }

    /// <summary>Private, shared and link-local ranges are refused unless allowed.</summary>
    public bool DenyPrivate { get; }

    /// <summary>Destinations reachable whatever else the policy says.</summary>
    public IReadOnlyList<EgressRule> Allow { get; }

    /// <summary>For one user's own VM: anything but the host, which the gateway reaches only with <paramref name="hostLoopback"/>.</summary>
    public static EgressPolicy UserMode(bool hostLoopback = false, Func<IReadOnlyCollection<uint>>? hostAddresses = null) =>
        new(hostLoopback, denyPrivate: false, [], hostAddresses);

    /// <summary>For a network tenants share: the public internet, and the destinations <paramref name="allow"/> names.</summary>
    public static EgressPolicy Restricted(IReadOnlyList<EgressRule>? allow = null, Func<IReadOnlyCollection<uint>>? hostAddresses = null) =>
        new(hostLoopback: false, denyPrivate: true, allow ?? [], hostAddresses);

    /// <summary>
    /// Where a guest's flow to <paramref name="destination"/>:<paramref name="port"/> goes on the host,
    /// or null when the policy refuses it. <paramref name="gateway"/> is the NAT's own address.
    /// </summary>
    public uint? Resolve(uint destination, ushort port, uint gateway)
    {
        if (destination == gateway)
        {
            return HostLoopback ? Ipv4.Loopback : null;
        }

        return Allows(destination, port) ? destination : null;
    }

    /// <summary>True when a guest may reach <paramref name="destination"/>:<paramref name="port"/> through the NAT.</summary>
    public bool Allows(uint destination, ushort port)
    {
        if (Unroutable.Any(r => In(destination, r)))
        {
            return false;
        }

        if (Allow.Any(r => r.Matches(destination, port)))
        {
            return true;
        }

        if (In(destination, LoopbackRange) || (DenyPrivate && PrivateRanges.Any(r => In(destination, r))))
        {
            return false;
        }

        return !OwnAddresses().Contains(destination);
    }

    private static bool In(uint address, (uint Network, int Prefix) range) =>
        (address >> (32 - range.Prefix)) == (range.Network >> (32 - range.Prefix));

    private HashSet<uint> OwnAddresses()
    {
        lock (_lock)
        {
            // Interfaces come and go (DHCP, VPNs): the list is read again after a few seconds.
            if (DateTime.UtcNow - _ownAddressesAt > HostAddressesLifetime)
            {
                _ownAddresses = [.. _hostAddresses()];
                _ownAddressesAt = DateTime.UtcNow;
            }

            return _ownAddresses;
        }
    }

    private static uint[] HostIpv4Addresses()
    {
        try
        {
            return [.. NetworkInterface.GetAllNetworkInterfaces()
                .SelectMany(i => i.GetIPProperties().UnicastAddresses)
                .Where(a => a.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
                .Select(a => Ipv4.FromAddress(a.Address))];
        }
        catch (NetworkInformationException)
        {
            return [];
        }
    }

    public override string ToString() =>
        (DenyPrivate ? "restricted" : "user-mode") + (HostLoopback ? ", host-loopback" : string.Empty) +
        (Allow.Count == 0 ? string.Empty : ", allow " + string.Join(' ', Allow));
}
