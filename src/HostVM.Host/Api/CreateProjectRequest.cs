using HostVM.Host.Inventory;

namespace HostVM.Host.Api;

/// <summary>POST /v1/projects.</summary>
public sealed record CreateProjectRequest
{
    public string? Name { get; init; }

    public string? Description { get; init; }

    public ProjectQuotas? Quotas { get; init; }
}
