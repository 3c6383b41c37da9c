namespace HostVM.Host.Inventory;

/// <summary>
/// A port forward of a NAT network, as the inventory holds it: a host socket (<see cref="Protocol"/>, <see cref="Address"/>,
/// <see cref="HostPort"/>: the port as bound, never 0, so a restarted daemon binds the same one) into a VM's NIC on the
/// network, at the address DHCP leased it, <see cref="GuestPort"/>.
/// </summary>
public sealed record NetworkForward
{
    /// <summary><c>tcp</c> or <c>udp</c>.</summary>
    public required string Protocol { get; init; }

    /// <summary>The IPv4 address the host socket listens on.</summary>
    public required string Address { get; init; }

    public required int HostPort { get; init; }

    /// <summary>The VM's id (it outlives a rename; the view shows its name).</summary>
    public required string VmId { get; init; }

    public required int GuestPort { get; init; }
}
