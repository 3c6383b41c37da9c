namespace HostVM.Cli.Api;

/// <summary>GET /v1/host/stats: the host's load and memory, every VM's line and their totals.</summary>
public sealed record HostStats
{
    public DateTimeOffset At { get; init; }

    public int Cores { get; init; }

    public List<double> LoadAverage { get; init; } = [];

    public long MemoryTotalBytes { get; init; }

    public long MemoryAvailableBytes { get; init; }

    public Dictionary<string, int> VmsByState { get; init; } = [];

    public int VcpusAllocated { get; init; }

    public long MemoryAllocatedMib { get; init; }

    public HostTotals Totals { get; init; } = new();

    public List<VmStats> Vms { get; init; } = [];
}
