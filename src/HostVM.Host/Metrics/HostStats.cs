namespace HostVM.Host.Metrics;

/// <summary>
/// GET /v1/host/stats: every VM's line (as GET /v1/vms/{vm}/stats, without the per-device lists) and
/// their totals, with the host's own load and memory (/proc/loadavg, /proc/meminfo).
/// </summary>
public sealed record HostStats
{
    public required DateTimeOffset At { get; init; }

    public int Cores { get; init; }

    /// <summary>1, 5 and 15 minute load averages.</summary>
    public IReadOnlyList<double> LoadAverage { get; init; } = [];

    public long MemoryTotalBytes { get; init; }

    public long MemoryAvailableBytes { get; init; }

    /// <summary>How many VMs are in each state (every state is listed, 0 included).</summary>
    public IReadOnlyDictionary<string, int> VmsByState { get; init; } = new Dictionary<string, int>();

    /// <summary>vCPUs and memory of the VMs that hold them (a VMM exists: starting, running, paused, stopping).</summary>
    public int VcpusAllocated { get; init; }

    public long MemoryAllocatedMib { get; init; }

    /// <summary>Sums over the VMs below that were read (running and paused).</summary>
    public required HostTotals Totals { get; init; }

    public IReadOnlyList<VmStats> Vms { get; init; } = [];
}
