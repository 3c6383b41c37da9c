namespace HostVM.Host.Inventory;

/// <summary>What a project's VMs may add up to (null: no limit). Counted over all its VMs, running or not, as OpenStack and Incus count.</summary>
public sealed record ProjectQuotas
{
    public int? MaxVms { get; init; }

    public int? MaxVcpus { get; init; }

    public long? MaxMemoryMib { get; init; }

    public long? MaxDiskMib { get; init; }
}
