namespace HostVM.Host.Api;

/// <summary>POST /v1/networks/{name}/forwards: a host port into a VM of the network.</summary>
public sealed record AddForwardRequest
{
    /// <summary><c>tcp</c> (the default) or <c>udp</c>.</summary>
    public string? Protocol { get; init; }

    /// <summary>The IPv4 address to listen on; default 127.0.0.1. Any other than a loopback address: the host's admin only.</summary>
    public string? Address { get; init; }

    /// <summary>The host port; 0 (the default) lets the OS choose. Below 1024: the host's admin only.</summary>
    public int? HostPort { get; init; }

    /// <summary>The VM (name or id) of the network's project, with a NIC on the network.</summary>
    public string? Vm { get; init; }

    public int? GuestPort { get; init; }
}
