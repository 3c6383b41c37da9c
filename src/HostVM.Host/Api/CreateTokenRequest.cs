namespace HostVM.Host.Api;

/// <summary>POST /v1/tokens.</summary>
public sealed record CreateTokenRequest
{
    /// <summary>viewer, operator or admin.</summary>
    public string? Role { get; init; }

    /// <summary>The one project it reaches; none: every project (a project's admin can only make tokens of its project).</summary>
    public string? Project { get; init; }

    /// <summary>How long it lives: "90m", "12h", "30d", "1w" (none: until revoked).</summary>
    public string? ExpiresIn { get; init; }

    public string? Description { get; init; }
}
