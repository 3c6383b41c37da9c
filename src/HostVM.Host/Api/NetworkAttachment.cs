namespace HostVM.Host.Api;

/// <summary>A NIC asked for in POST /v1/vms: the network, and a MAC (or one is made up).</summary>
public sealed record NetworkAttachment
{
    public string? Network { get; init; }

    public string? Mac { get; init; }
}
