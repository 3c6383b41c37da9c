namespace HostVM.Host.Inventory;

/// <summary>What a project's VMs and networks may add up to (null: no limit). Counted over all its VMs, running or not, as OpenStack and Incus count.</summary>
public sealed record ProjectQuotas
{
    public int? MaxVms { get; init; }

    public int? MaxVcpus { get; init; }

    public long? MaxMemoryMib { get; init; }

    public long? MaxDiskMib { get; init; }

    /// <summary>Networks in the project. Each costs the daemon a switch directory and, with a NAT, a thread, a timer and host sockets.</summary>
    public int? MaxNetworks { get; init; }
}
