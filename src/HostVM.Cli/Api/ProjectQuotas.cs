namespace HostVM.Cli.Api;

/// <summary>What a project's VMs and networks may add up to; null: no limit (left out of the JSON, which the daemon reads as no limit).</summary>
public sealed record ProjectQuotas
{
    public int? MaxVms { get; init; }

    public int? MaxVcpus { get; init; }

    public long? MaxMemoryMib { get; init; }

    public long? MaxDiskMib { get; init; }

    public int? MaxNetworks { get; init; }
}
