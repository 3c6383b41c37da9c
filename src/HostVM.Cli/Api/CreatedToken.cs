namespace HostVM.Cli.Api;

/// <summary>The answer to POST /v1/tokens: the token itself (the only time the daemon shows it) and its record.</summary>
public sealed record CreatedToken
{
    public string Token { get; init; } = string.Empty;

    public Token Details { get; init; } = new();
}
