using HostVM.Host.Metrics;

namespace HostVM.Host.Tests.Metrics;

/// <summary>Rates between two readings: per second over the wall time between them, and never negative across a VMM restart.</summary>
public sealed class StatsRatesTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 24, 10, 0, 0, TimeSpan.Zero);

    private static StatsCounters Reading(double atS, long uptimeMs, ulong instructions, long cpuMs = 0, long vcpuMs = 0,
        long diskReadBytes = 0, long diskReads = 0, long netTxBytes = 0) => new()
        {
            At = T0.AddSeconds(atS),
            UptimeMs = uptimeMs,
            InstructionsRetired = instructions,
            CpuTimeMs = cpuMs,
            VcpuTimeMs = vcpuMs,
            DiskReadBytes = diskReadBytes,
            DiskReads = diskReads,
            NetTxBytes = netTxBytes,
        };

    [Fact]
    public void RatesAreChangesPerSecondOfWallTime()
    {
        var rates = StatsRates.Between(
            Reading(0, 5_000, 1_000_000_000, cpuMs: 1_000, vcpuMs: 800, diskReadBytes: 4096, diskReads: 1, netTxBytes: 100),
            Reading(10, 15_000, 3_500_000_000, cpuMs: 6_000, vcpuMs: 5_800, diskReadBytes: 4096 + 40960, diskReads: 11, netTxBytes: 1100))!;
        Assert.Equal(10_000, rates.IntervalMs);
        Assert.False(rates.CountersReset);
        Assert.Equal(250, rates.Mips, 6);
        Assert.Equal(50, rates.CpuPercent, 6);
        Assert.Equal(50, rates.VcpuPercent, 6);
        Assert.Equal(4096, rates.DiskReadBytesPerS, 6);
        Assert.Equal(1, rates.DiskReadOpsPerS, 6);
        Assert.Equal(100, rates.NetTxBytesPerS, 6);
        Assert.Equal(0, rates.NetRxBytesPerS);
    }

    [Fact]
    public void AnIdleIntervalHasZeroRates()
    {
        var rates = StatsRates.Between(Reading(0, 1_000, 42, cpuMs: 7), Reading(2, 3_000, 42, cpuMs: 7))!;
        Assert.Equal(0, rates.Mips);
        Assert.Equal(0, rates.CpuPercent);
    }

    [Fact]
    public void AVmmRestartCountsFromZeroOverTheNewUptimeAndIsNeverNegative()
    {
        // The old VMM had retired 9e9 instructions; the new one, up for 4 s of the 10 s between readings, 400e6.
        var rates = StatsRates.Between(
            Reading(0, 600_000, 9_000_000_000, cpuMs: 500_000, diskReadBytes: 1 << 30, diskReads: 9999),
            Reading(10, 4_000, 400_000_000, cpuMs: 2_000, diskReadBytes: 8192, diskReads: 2))!;
        Assert.True(rates.CountersReset);
        Assert.Equal(4_000, rates.IntervalMs);
        Assert.Equal(100, rates.Mips, 6);
        Assert.Equal(50, rates.CpuPercent, 6);
        Assert.Equal(2048, rates.DiskReadBytesPerS, 6);
        Assert.Equal(0.5, rates.DiskReadOpsPerS, 6);
        Assert.True(rates.DiskWriteBytesPerS >= 0 && rates.NetRxBytesPerS >= 0);
    }

    [Fact]
    public void ARestartWhoseUptimeExceedsTheWallTimeIsMeasuredOverTheWallTime()
    {
        // Uptime went back (a restart) but the new uptime is longer than the readings are apart (clock
        // steps, or a VMM that booted before the earlier reading answered): the interval is capped.
        var rates = StatsRates.Between(Reading(0, 50_000, 5_000_000_000), Reading(2, 20_000, 100_000_000))!;
        Assert.True(rates.CountersReset);
        Assert.Equal(2_000, rates.IntervalMs);
        Assert.Equal(50, rates.Mips, 6);
    }

    [Fact]
    public void ADeviceCounterThatWentBackWithoutARestartCountsAsNoChange()
    {
        // A NIC removed between readings: its bytes leave the sum; that is not negative traffic.
        var rates = StatsRates.Between(Reading(0, 1_000, 10, netTxBytes: 5_000), Reading(1, 2_000, 20, netTxBytes: 1_000))!;
        Assert.False(rates.CountersReset);
        Assert.Equal(0, rates.NetTxBytesPerS);
    }

    [Fact]
    public void ReadingsOutOfOrderHaveNoRates()
    {
        Assert.Null(StatsRates.Between(Reading(5, 1_000, 10), Reading(5, 1_000, 10)));
        Assert.Null(StatsRates.Between(Reading(6, 1_000, 10), Reading(5, 2_000, 20)));
    }
}
