using HostVM.Vmm.Api;

namespace HostVM.Host.Metrics;

/// <summary>
/// One reading of a VM's VMM, with its drives' and NICs' counters summed: what the sampler keeps and
/// what rates are computed between. <see cref="At"/> is the daemon's clock when the answer arrived.
/// </summary>
public sealed record StatsCounters
{
    public required DateTimeOffset At { get; init; }

    public long UptimeMs { get; init; }

    public ulong InstructionsRetired { get; init; }

    public long CpuTimeMs { get; init; }

    public long VcpuTimeMs { get; init; }

    public long CpuThrottledMs { get; init; }

    public long HostRssBytes { get; init; }

    public long DiskReads { get; init; }

    public long DiskWrites { get; init; }

    public long DiskReadBytes { get; init; }

    public long DiskWrittenBytes { get; init; }

    public long NetRxPackets { get; init; }

    public long NetTxPackets { get; init; }

    public long NetRxBytes { get; init; }

    public long NetTxBytes { get; init; }

    public static StatsCounters From(VmmStatistics stats, DateTimeOffset at)
    {
        ArgumentNullException.ThrowIfNull(stats);
        return new StatsCounters
        {
            At = at,
            UptimeMs = stats.UptimeMs,
            InstructionsRetired = stats.InstructionsRetired,
            CpuTimeMs = stats.CpuTimeMs,
            VcpuTimeMs = stats.VcpuTimeMs,
            CpuThrottledMs = stats.CpuThrottledMs,
            HostRssBytes = stats.HostRssBytes,
            DiskReads = stats.Drives.Sum(d => d.Reads),
            DiskWrites = stats.Drives.Sum(d => d.Writes),
            DiskReadBytes = stats.Drives.Sum(d => d.BytesRead),
            DiskWrittenBytes = stats.Drives.Sum(d => d.BytesWritten),
            NetRxPackets = stats.NetworkInterfaces.Sum(n => n.RxFrames),
            NetTxPackets = stats.NetworkInterfaces.Sum(n => n.TxFrames),
            NetRxBytes = stats.NetworkInterfaces.Sum(n => n.RxBytes),
            NetTxBytes = stats.NetworkInterfaces.Sum(n => n.TxBytes),
        };
    }
}
