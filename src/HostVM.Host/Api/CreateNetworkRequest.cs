namespace HostVM.Host.Api;

/// <summary>POST /v1/networks.</summary>
public sealed record CreateNetworkRequest
{
    public string? Name { get; init; }

    public bool? Nat { get; init; }
}
