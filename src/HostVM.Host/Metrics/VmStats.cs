using HostVM.Vmm.Api;

namespace HostVM.Host.Metrics;

/// <summary>
/// GET /v1/vms/{vm}/stats: the VM's inventory facts, a fresh reading of its VMM and the rates since an
/// earlier reading (docs/host-api.md says which). A VM without a VMM has its state, zeros and no rates.
/// </summary>
public sealed record VmStats
{
    public required string Id { get; init; }

    public required string Name { get; init; }

    public required string State { get; init; }

    public int Vcpus { get; init; }

    public long MemoryMib { get; init; }

    public int? CpuCapPercent { get; init; }

    /// <summary>When the VMM was read (null: it was not, the VM has none or it did not answer).</summary>
    public DateTimeOffset? At { get; init; }

    /// <summary>Why there is no reading of a VM that has a VMM (it did not answer in time), else null.</summary>
    public string? Unavailable { get; init; }

    public long UptimeMs { get; init; }

    public ulong InstructionsRetired { get; init; }

    public long CpuTimeMs { get; init; }

    public long VcpuTimeMs { get; init; }

    public long CpuThrottledMs { get; init; }

    public long GuestMemoryBytes { get; init; }

    public long HostRssBytes { get; init; }

    /// <summary>Summed over the drives.</summary>
    public long DiskReadBytes { get; init; }

    public long DiskWrittenBytes { get; init; }

    /// <summary>Summed over the NICs (rx: toward the guest).</summary>
    public long NetRxBytes { get; init; }

    public long NetTxBytes { get; init; }

    /// <summary>Each drive's counters (empty in GET /v1/host/stats).</summary>
    public IReadOnlyList<DriveStatistics> Drives { get; init; } = [];

    /// <summary>Each NIC's counters (empty in GET /v1/host/stats).</summary>
    public IReadOnlyList<NetworkInterfaceStatistics> NetworkInterfaces { get; init; } = [];

    public StatsRates? Rates { get; init; }
}
