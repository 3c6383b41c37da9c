using System.Buffers.Binary;
using System.Net;
using HostVM.Networking.UserNet;

namespace HostVM.Networking.Switch;

/// <summary>
/// IPv4 addresses on a switch that belong to one MAC only: a NAT uplink's gateway and DNS addresses. A guest
/// that announces one of them in ARP with its own MAC (a gratuitous ARP, or a reply to a neighbour's request)
/// would draw its neighbours' traffic for the gateway to itself; every port of the switch drops such a claim
/// (<see cref="SwitchPort"/>), counting it.
/// </summary>
/// <remarks>
/// Why a file in the switch directory, and why every port checks: the switch has no centre, ports send to
/// each other directly, so a false claim must be stopped where it leaves (the guest's own port, in its VMM)
/// and where it arrives (any other port: a sender may be a process that does not check). The VMM knows its
/// NIC's MAC but not which addresses the NAT in the daemon speaks for; the uplink writes them next to the
/// sockets, and each port reads them when it joins. Only the switch's owner can write there, and anyone who
/// could already sends frames, so the file is trusted as the sockets are. Stopping the claim in the NAT alone
/// would protect nobody: the NAT never learns its own addresses from guests, but the other guests would.
/// </remarks>
public sealed class SwitchReservation
{
    /// <summary>The file in the switch directory: the owner's MAC, then the addresses, separated by spaces.</summary>
    public const string FileName = "reserved";

    private const int EthernetHeader = 14;
    private const int ArpLength = 28;
    private const ushort EtherArp = 0x0806;
    private const ushort EtherIpv4 = 0x0800;
    private readonly HashSet<uint> _addresses = [];

    public SwitchReservation(MacAddress owner, IEnumerable<IPAddress> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        Owner = owner;
        foreach (var address in addresses)
        {
            _addresses.Add(Ipv4.FromAddress(address));
        }
    }

    /// <summary>The MAC the reserved addresses belong to (the NAT's gateway MAC).</summary>
    public MacAddress Owner { get; }

    public IReadOnlyList<IPAddress> Addresses => [.. _addresses.Order().Select(Ipv4.ToAddress)];

    /// <summary>
    /// Whether <paramref name="frame"/> is Ethernet/IPv4 ARP (request or reply) whose sender protocol address is
    /// reserved while its sender hardware address or Ethernet source is not <see cref="Owner"/>.
    /// </summary>
    public bool IsFalseClaim(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < EthernetHeader + ArpLength || BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) != EtherArp)
        {
            return false;
        }

        // Hardware type 1 (Ethernet), protocol IPv4, lengths 6 and 4: the only ARP a neighbour's IPv4 stack reads.
        var arp = frame[EthernetHeader..];
        if (BinaryPrimitives.ReadUInt16BigEndian(arp) != 1 || BinaryPrimitives.ReadUInt16BigEndian(arp[2..]) != EtherIpv4 || arp[4] != 6 || arp[5] != 4)
        {
            return false;
        }

        return _addresses.Contains(BinaryPrimitives.ReadUInt32BigEndian(arp[14..])) &&
            (MacAddress.FromBytes(arp[8..]) != Owner || MacAddress.FromBytes(frame[6..]) != Owner);
    }

    /// <summary>Writes the reservation into a switch directory, replacing any (atomically: a joining port reads all of it or the old one).</summary>
    public void WriteTo(string switchDirectory)
    {
        string path = Path.Combine(switchDirectory, FileName);
        string temporary = path + ".new";
        File.WriteAllText(temporary, string.Join(' ', [Owner.ToString(), .. Addresses.Select(a => a.ToString())]) + "\n");
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>The reservation in a switch directory; null when it has none (no NAT uplink) or it cannot be read.</summary>
    public static SwitchReservation? ReadFrom(string switchDirectory)
    {
        try
        {
            string[] fields = File.ReadAllText(Path.Combine(switchDirectory, FileName)).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return fields.Length == 0 ? null : new SwitchReservation(MacAddress.Parse(fields[0]), fields[1..].Select(IPAddress.Parse));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentException)
        {
            return null;
        }
    }
}
