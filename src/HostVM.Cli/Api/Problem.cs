namespace HostVM.Cli.Api;

/// <summary>The daemon's answer to a refused request (RFC 9457 problem+json).</summary>
public sealed record Problem
{
    public string? Type { get; init; }

    public string? Title { get; init; }

    public int? Status { get; init; }

    public string? Detail { get; init; }

    /// <summary>What was wrong with each field, by field name.</summary>
    public Dictionary<string, string[]>? Errors { get; init; }
}
