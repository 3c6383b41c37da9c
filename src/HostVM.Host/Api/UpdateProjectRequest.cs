using HostVM.Host.Inventory;

namespace HostVM.Host.Api;

/// <summary>PATCH /v1/projects/{name}: what is given is replaced (quotas as a whole).</summary>
public sealed record UpdateProjectRequest
{
    public string? Description { get; init; }

    public ProjectQuotas? Quotas { get; init; }
}
