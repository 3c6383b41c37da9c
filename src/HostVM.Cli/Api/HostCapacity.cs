namespace HostVM.Cli.Api;

/// <summary>What the host offers: vCPUs = cores × cpu_overcommit, memory = (RAM − reserve) × memory_overcommit.</summary>
public sealed record HostCapacity
{
    public int Cores { get; init; }

    public int Vcpus { get; init; }

    public long MemoryMib { get; init; }

    public long DiskMib { get; init; }

    public double CpuOvercommit { get; init; }

    public double MemoryOvercommit { get; init; }
}
