namespace HostVM.Cli.Api;

/// <summary>POST /v1/networks.</summary>
public sealed record CreateNetworkRequest
{
    public required string Name { get; init; }

    public bool Nat { get; init; }
}
