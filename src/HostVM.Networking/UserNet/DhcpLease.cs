namespace HostVM.Networking.UserNet;

/// <summary>One client's address: offered (held briefly for its REQUEST) or bound (acknowledged, until it expires).</summary>
internal sealed class DhcpLease(MacAddress mac, uint address)
{
    public MacAddress Mac { get; } = mac;

    public uint Address { get; } = address;

    /// <summary>When the lease (or the offer) runs out, in <see cref="Environment.TickCount64"/> milliseconds.</summary>
    public long ExpiresAt { get; set; }

    /// <summary>Acknowledged with DHCPACK, not only offered.</summary>
    public bool Bound { get; set; }

    public bool IsActive(long now) => now < ExpiresAt;
}
