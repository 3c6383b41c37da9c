namespace HostVM.Host.Inventory;

/// <summary>A tenant: every VM, image and network belongs to one; a token of one project never sees another's.</summary>
public sealed record ProjectRecord
{
    /// <summary>The project every object belongs to unless told otherwise; it always exists.</summary>
    public const string Default = "default";

    public required string Name { get; init; }

    public string Description { get; init; } = string.Empty;

    public ProjectQuotas Quotas { get; init; } = new();

    public DateTimeOffset CreatedAt { get; init; }
}
