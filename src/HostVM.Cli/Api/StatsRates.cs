namespace HostVM.Cli.Api;

/// <summary>What a VM did per second over <see cref="IntervalMs"/> (the daemon's StatsRates).</summary>
public sealed record StatsRates
{
    public long IntervalMs { get; init; }

    public bool CountersReset { get; init; }

    public double Mips { get; init; }

    public double CpuPercent { get; init; }

    public double VcpuPercent { get; init; }

    public double ThrottledPercent { get; init; }

    public double DiskReadBytesPerS { get; init; }

    public double DiskWriteBytesPerS { get; init; }

    public double DiskReadOpsPerS { get; init; }

    public double DiskWriteOpsPerS { get; init; }

    public double NetRxBytesPerS { get; init; }

    public double NetTxBytesPerS { get; init; }

    public double NetRxPacketsPerS { get; init; }

    public double NetTxPacketsPerS { get; init; }
}
