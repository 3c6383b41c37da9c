using System.Globalization;
using System.Net;

namespace HostVM.Networking.UserNet;

/// <summary>
/// One destination a NAT may reach despite its policy: <c>ADDRESS[/PREFIX][:PORT]</c>, e.g.
/// <c>10.1.2.3:5432</c>, <c>192.168.50.0/24</c> or <c>203.0.113.9</c> (every port).
/// </summary>
public sealed record EgressRule(uint Network, int PrefixLength, ushort? Port)
{
    private uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);

    public bool Matches(uint address, ushort port) =>
        (address & Mask) == (Network & Mask) && (Port is null || Port == port);

    public static EgressRule Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string rest = text.Trim();
        ushort? port = null;
        int colon = rest.LastIndexOf(':');
        if (colon >= 0)
        {
            if (!ushort.TryParse(rest.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out ushort p) || p == 0)
            {
                throw new FormatException($"'{text}': the port after ':' must be 1-65535.");
            }

            port = p;
            rest = rest[..colon];
        }

        int prefix = 32;
        int slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            if (!int.TryParse(rest.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > 32)
            {
                throw new FormatException($"'{text}': the prefix length after '/' must be 0-32.");
            }

            rest = rest[..slash];
        }

        if (!IPAddress.TryParse(rest, out var address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || rest.Count(c => c == '.') != 3)
        {
            throw new FormatException($"'{text}': not an IPv4 destination (ADDRESS[/PREFIX][:PORT], e.g. 10.1.2.3:5432 or 192.168.50.0/24).");
        }

        uint network = Ipv4.FromAddress(address);
        var rule = new EgressRule(network, prefix, port);
        if ((network & ~rule.Mask) != 0)
        {
            throw new FormatException($"'{text}': the address has bits set beyond the /{prefix} prefix; write the network's first address.");
        }

        return rule;
    }

    public override string ToString() =>
        $"{Ipv4.ToAddress(Network)}{(PrefixLength == 32 ? string.Empty : "/" + PrefixLength.ToString(CultureInfo.InvariantCulture))}{(Port is { } p ? ":" + p.ToString(CultureInfo.InvariantCulture) : string.Empty)}";
}
