using System.Globalization;
using System.Net;

namespace HostVM.Networking.UserNet;

/// <summary>
/// One port forward from the host into the guest, QEMU's <c>hostfwd=tcp:127.0.0.1:8080-:80</c>.
/// Host port 0 binds an ephemeral port; <see cref="UserNetwork.BoundForwardPorts"/> says which.
/// </summary>
public sealed record HostForward(HostForwardProtocol Protocol, IPAddress HostAddress, int HostPort, IPAddress? GuestAddress, int GuestPort)
{
    /// <summary>
    /// The guest as a NIC rather than an address: each connection (or UDP client) goes to the address DHCP has leased to
    /// this MAC when it arrives, so a guest whose lease changes stays reachable; without a lease it is refused. When set,
    /// <see cref="GuestAddress"/> must be null.
    /// </summary>
    public MacAddress? GuestMac { get; init; }

    /// <summary>
    /// Parses <c>[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT</c>. The protocol defaults to tcp;
    /// an empty host address means 127.0.0.1 (only this host can connect; QEMU binds all addresses);
    /// an empty guest address means the first guest address (<see cref="UserNetworkOptions.FirstGuestAddress"/>,
    /// the first DHCP lease when several guests share the network).
    /// </summary>
    public static HostForward Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string rest = text;
        var protocol = HostForwardProtocol.Tcp;
        if (rest.StartsWith("tcp:", StringComparison.OrdinalIgnoreCase))
        {
            rest = rest[4..];
        }
        else if (rest.StartsWith("udp:", StringComparison.OrdinalIgnoreCase))
        {
            protocol = HostForwardProtocol.Udp;
            rest = rest[4..];
        }
        else if (rest.Length > 0 && rest[0] == ':')
        {
            rest = rest[1..];
        }

        int dash = rest.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0)
        {
            throw Bad(text, "the host and guest sides must be separated by '-'");
        }

        var (hostAddress, hostPort) = ParseSide(text, rest[..dash], "host");
        var (guestAddress, guestPort) = ParseSide(text, rest[(dash + 1)..], "guest");
        if (guestPort == 0)
        {
            throw Bad(text, "the guest port must be 1-65535");
        }

        return new HostForward(protocol, hostAddress ?? IPAddress.Loopback, hostPort, guestAddress, guestPort);
    }

    /// <summary>Checks a forward built directly rather than parsed.</summary>
    internal void EnsureValid()
    {
        if (HostPort is < 0 or > 65535 || GuestPort is < 1 or > 65535)
        {
            throw new ArgumentException($"Host forward '{this}': ports must be 0-65535 on the host and 1-65535 in the guest.");
        }

        ArgumentNullException.ThrowIfNull(HostAddress);
        if (GuestMac is not null && GuestAddress is not null)
        {
            throw new ArgumentException($"Host forward '{this}': name the guest by its address or by its MAC, not both.");
        }
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{(Protocol == HostForwardProtocol.Tcp ? "tcp" : "udp")}:{HostAddress}:{HostPort}-{(GuestMac is { } mac ? $"[{mac}]" : GuestAddress)}:{GuestPort}");

    private static (IPAddress? Address, int Port) ParseSide(string text, string side, string which)
    {
        int colon = side.LastIndexOf(':');
        if (colon < 0)
        {
            throw Bad(text, $"the {which} side '{side}' must be ADDRESS:PORT (the address may be empty, as in ':80')");
        }

        string addressText = side[..colon];
        string portText = side[(colon + 1)..];
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
        {
            throw Bad(text, $"the {which} port '{portText}' is not a number from 0 to 65535");
        }

        IPAddress? address = null;
        if (addressText.Length > 0)
        {
            if (!IPAddress.TryParse(addressText, out address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            {
                throw Bad(text, $"the {which} address '{addressText}' is not an IPv4 address");
            }
        }

        return (address, port);
    }

    private static FormatException Bad(string text, string why) =>
        new($"'{text}' is not a host forward: {why}. Write it like tcp:127.0.0.1:8080-:80 (protocol:hostaddr:hostport-guestaddr:guestport).");
}
