namespace HostVM.Cli.Api;

/// <summary>A project (a tenant with quotas) as GET /v1/projects/{name} shows it, with what it holds.</summary>
public sealed record Project
{
    public string Name { get; init; } = string.Empty;

    public string Description { get; init; } = string.Empty;

    public ProjectQuotas Quotas { get; init; } = new();

    public ProjectUsage Usage { get; init; } = new();

    public DateTimeOffset? CreatedAt { get; init; }
}
