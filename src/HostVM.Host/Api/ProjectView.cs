using HostVM.Host.Inventory;

namespace HostVM.Host.Api;

/// <summary>A project as the API shows it: with what it holds.</summary>
public sealed record ProjectView(string Name, string Description, ProjectQuotas Quotas, ProjectUsage Usage, DateTimeOffset CreatedAt);
