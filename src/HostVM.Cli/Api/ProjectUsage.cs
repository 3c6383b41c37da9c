namespace HostVM.Cli.Api;

/// <summary>What a project holds, to compare with its quotas.</summary>
public sealed record ProjectUsage
{
    public int Vms { get; init; }

    public long Vcpus { get; init; }

    public long MemoryMib { get; init; }

    public long DiskMib { get; init; }

    public int Images { get; init; }

    public int Networks { get; init; }
}
