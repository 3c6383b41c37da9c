namespace HostVM.Cli.Api;

/// <summary>A sampler's reading of a VM, drives and NICs summed.</summary>
public sealed record StatsCounters
{
    public DateTimeOffset At { get; init; }

    public long UptimeMs { get; init; }

    public ulong InstructionsRetired { get; init; }

    public long CpuTimeMs { get; init; }

    public long VcpuTimeMs { get; init; }

    public long HostRssBytes { get; init; }

    public long DiskReadBytes { get; init; }

    public long DiskWrittenBytes { get; init; }

    public long NetRxBytes { get; init; }

    public long NetTxBytes { get; init; }
}
