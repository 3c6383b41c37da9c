namespace HostVM.Cli.Api;

/// <summary>What running and paused VMs hold (disk: every VM's).</summary>
public sealed record HostAllocation
{
    public int Vcpus { get; init; }

    public long MemoryMib { get; init; }

    public long DiskMib { get; init; }
}
