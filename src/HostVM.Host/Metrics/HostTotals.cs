namespace HostVM.Host.Metrics;

/// <summary>The sums over the VMs of <see cref="HostStats"/>: counters of those read, rates of those with rates.</summary>
public sealed record HostTotals
{
    public double Mips { get; init; }

    public double CpuPercent { get; init; }

    public long HostRssBytes { get; init; }

    public long DiskReadBytes { get; init; }

    public long DiskWrittenBytes { get; init; }

    public long NetRxBytes { get; init; }

    public long NetTxBytes { get; init; }

    public double DiskReadBytesPerS { get; init; }

    public double DiskWriteBytesPerS { get; init; }

    public double NetRxBytesPerS { get; init; }

    public double NetTxBytesPerS { get; init; }
}
