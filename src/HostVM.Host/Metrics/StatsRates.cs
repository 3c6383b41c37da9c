namespace HostVM.Host.Metrics;

/// <summary>
/// What a VM did per second between two readings of its counters, <see cref="IntervalMs"/> apart.
/// MIPS is guest instructions retired per second / 10⁶; the CPU percentages are of one host core
/// (a VMM busy on two cores shows 200).
/// </summary>
public sealed record StatsRates
{
    public long IntervalMs { get; init; }

    /// <summary>True when the VMM restarted between the readings (its counters began again at zero).</summary>
    public bool CountersReset { get; init; }

    public double Mips { get; init; }

    /// <summary>CPU time of the whole VMM process (harts, devices, API) per wall time, in percent.</summary>
    public double CpuPercent { get; init; }

    /// <summary>CPU time of the hart threads per wall time, in percent.</summary>
    public double VcpuPercent { get; init; }

    /// <summary>Time the harts slept because of the CPU cap, per wall time, in percent.</summary>
    public double ThrottledPercent { get; init; }

    public double DiskReadBytesPerS { get; init; }

    public double DiskWriteBytesPerS { get; init; }

    public double DiskReadOpsPerS { get; init; }

    public double DiskWriteOpsPerS { get; init; }

    public double NetRxBytesPerS { get; init; }

    public double NetTxBytesPerS { get; init; }

    public double NetRxPacketsPerS { get; init; }

    public double NetTxPacketsPerS { get; init; }

    /// <summary>
    /// The rates from <paramref name="earlier"/> to <paramref name="later"/>, or null if they are not in
    /// that order. A VMM that restarted in between (its uptime went back, or a counter did) has counted
    /// from zero since: each counter's change is then its new value, over the new process's uptime (at
    /// most the wall time between the readings), so a restart never shows a negative rate.
    /// </summary>
    public static StatsRates? Between(StatsCounters earlier, StatsCounters later)
    {
        ArgumentNullException.ThrowIfNull(earlier);
        ArgumentNullException.ThrowIfNull(later);
        double wallMs = (later.At - earlier.At).TotalMilliseconds;
        if (wallMs <= 0)
        {
            return null;
        }

        bool reset = later.UptimeMs < earlier.UptimeMs
            || later.InstructionsRetired < earlier.InstructionsRetired
            || later.CpuTimeMs < earlier.CpuTimeMs;
        double ms = reset ? Math.Clamp(later.UptimeMs, 1, wallMs) : wallMs;
        double seconds = ms / 1000;

        double Delta(long before, long after) => reset ? after : Math.Max(0, after - before);
        double PerS(long before, long after) => Delta(before, after) / seconds;
        double Percent(long beforeMs, long afterMs) => Delta(beforeMs, afterMs) / ms * 100;

        double instructions = reset ? later.InstructionsRetired
            : later.InstructionsRetired - earlier.InstructionsRetired;
        return new StatsRates
        {
            IntervalMs = (long)Math.Round(ms),
            CountersReset = reset,
            Mips = instructions / seconds / 1e6,
            CpuPercent = Percent(earlier.CpuTimeMs, later.CpuTimeMs),
            VcpuPercent = Percent(earlier.VcpuTimeMs, later.VcpuTimeMs),
            ThrottledPercent = Percent(earlier.CpuThrottledMs, later.CpuThrottledMs),
            DiskReadBytesPerS = PerS(earlier.DiskReadBytes, later.DiskReadBytes),
            DiskWriteBytesPerS = PerS(earlier.DiskWrittenBytes, later.DiskWrittenBytes),
            DiskReadOpsPerS = PerS(earlier.DiskReads, later.DiskReads),
            DiskWriteOpsPerS = PerS(earlier.DiskWrites, later.DiskWrites),
            NetRxBytesPerS = PerS(earlier.NetRxBytes, later.NetRxBytes),
            NetTxBytesPerS = PerS(earlier.NetTxBytes, later.NetTxBytes),
            NetRxPacketsPerS = PerS(earlier.NetRxPackets, later.NetRxPackets),
            NetTxPacketsPerS = PerS(earlier.NetTxPackets, later.NetTxPackets),
        };
    }
}
