namespace HostVM.Cli.Api;

/// <summary>GET /v1/vms/{vm}/stats, and one line of GET /v1/host/stats.</summary>
public sealed record VmStats
{
    public string Id { get; init; } = string.Empty;

    public string Name { get; init; } = string.Empty;

    public string State { get; init; } = string.Empty;

    public int Vcpus { get; init; }

    public long MemoryMib { get; init; }

    public int? CpuCapPercent { get; init; }

    public DateTimeOffset? At { get; init; }

    public string? Unavailable { get; init; }

    public long UptimeMs { get; init; }

    public ulong InstructionsRetired { get; init; }

    public long CpuTimeMs { get; init; }

    public long VcpuTimeMs { get; init; }

    public long CpuThrottledMs { get; init; }

    public long GuestMemoryBytes { get; init; }

    public long HostRssBytes { get; init; }

    public long DiskReadBytes { get; init; }

    public long DiskWrittenBytes { get; init; }

    public long NetRxBytes { get; init; }

    public long NetTxBytes { get; init; }

    public List<DriveStats> Drives { get; init; } = [];

    public List<NicStats> NetworkInterfaces { get; init; } = [];

    public StatsRates? Rates { get; init; }
}
