namespace HostVM.Host.Api;

/// <summary>POST /v1/networks.</summary>
public sealed record CreateNetworkRequest
{
    public string? Name { get; init; }

    /// <summary>The project it goes into (default: the token's, or "default").</summary>
    public string? Project { get; init; }

    public bool? Nat { get; init; }
}
