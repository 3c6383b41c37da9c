namespace HostVM.Cli.Api;

/// <summary>A VM's NIC: the network it is on and its MAC (in a request the MAC may be left for the daemon to choose).</summary>
public sealed record VmNetwork
{
    public string Network { get; init; } = string.Empty;

    public string? Mac { get; init; }
}
