namespace HostVM.Cli.Api;

/// <summary>POST /v1/tokens. A null field is left out: no project (every project), no expiry.</summary>
public sealed record CreateTokenRequest
{
    public required string Role { get; init; }

    public string? Project { get; init; }

    /// <summary>How long it lives: "90m", "12h", "30d", "1w".</summary>
    public string? ExpiresIn { get; init; }

    public string? Description { get; init; }
}
