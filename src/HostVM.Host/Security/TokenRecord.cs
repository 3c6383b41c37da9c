namespace HostVM.Host.Security;

/// <summary>An API token as the inventory keeps it (the secret is not here: only its hash is stored, beside this).</summary>
public sealed record TokenRecord
{
    /// <summary>The public part of the token (<c>hvt_ID_SECRET</c>): names it in lists, the audit log and revocation.</summary>
    public required string Id { get; init; }

    public string Description { get; init; } = string.Empty;

    public required string Role { get; init; }

    /// <summary>The one project it reaches; null: every project.</summary>
    public string? Project { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Who made it (a token id, or "local", or "first-start").</summary>
    public string CreatedBy { get; init; } = string.Empty;

    public DateTimeOffset? ExpiresAt { get; init; }

    public DateTimeOffset? RevokedAt { get; init; }
}
