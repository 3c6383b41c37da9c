namespace HostVM.Cli.Api;

/// <summary>An API token as GET /v1/tokens shows it (never its secret).</summary>
public sealed record Token
{
    /// <summary>The public part of the token (hvt_ID_...): names it in lists, the audit log and `token revoke`.</summary>
    public string Id { get; init; } = string.Empty;

    public string Description { get; init; } = string.Empty;

    /// <summary>viewer, operator or admin.</summary>
    public string Role { get; init; } = string.Empty;

    /// <summary>The one project it reaches; null: every project.</summary>
    public string? Project { get; init; }

    public DateTimeOffset? CreatedAt { get; init; }

    public string CreatedBy { get; init; } = string.Empty;

    public DateTimeOffset? ExpiresAt { get; init; }

    public DateTimeOffset? RevokedAt { get; init; }
}
