namespace HostVM.Cli.Api;

/// <summary>PATCH /v1/projects/{name}: a field given (not null) replaces the old one; quotas are replaced whole.</summary>
public sealed record UpdateProjectRequest
{
    public string? Description { get; init; }

    public ProjectQuotas? Quotas { get; init; }
}
