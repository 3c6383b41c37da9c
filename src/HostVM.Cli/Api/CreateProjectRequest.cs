namespace HostVM.Cli.Api;

/// <summary>POST /v1/projects.</summary>
public sealed record CreateProjectRequest
{
    public required string Name { get; init; }

    public string? Description { get; init; }

    public ProjectQuotas? Quotas { get; init; }
}
