namespace HostVM.Cli.Api;

/// <summary>POST /v1/networks.</summary>
public sealed record CreateNetworkRequest
{
    public required string Name { get; init; }

    /// <summary>The project it goes into (null: the token's, else "default").</summary>
    public string? Project { get; init; }

    public bool Nat { get; init; }
}
