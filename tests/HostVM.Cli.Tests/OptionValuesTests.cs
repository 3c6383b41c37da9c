using HostVM.Cli.Api;

namespace HostVM.Cli.Tests;

/// <summary>Sizes, rates and networks as the daemon commands read them.</summary>
public sealed class OptionValuesTests
{
    [Theory]
    [InlineData("256M", 256)]
    [InlineData("256m", 256)]
    [InlineData("1G", 1024)]
    [InlineData("512", 512)]
    [InlineData("2048K", 2)]
    public void SizesAreWholeMib(string text, long mib) => Assert.Equal(mib, OptionValues.Mib("--memory", text));

    [Theory]
    [InlineData("1536K")]
    [InlineData("0")]
    [InlineData("1Gi")]
    [InlineData("-1")]
    public void OtherSizesAreRefused(string text) => Assert.Throws<UsageException>(() => OptionValues.Mib("--memory", text));

    [Theory]
    [InlineData("10M/s", true, 10L << 20)]
    [InlineData("1M/100ms", true, 10L << 20)]
    [InlineData("1K/2s", true, 512)]
    [InlineData("500/s", false, 500)]
    [InlineData("50/100ms", false, 500)]
    public void RatesArePerSecond(string text, bool bytes, long perSecond) =>
        Assert.Equal(perSecond, OptionValues.Rate("--disk-bw", text, bytes));

    [Theory]
    [InlineData("none")]
    [InlineData("0")]
    public void NoneIsNoLimit(string text) => Assert.Null(OptionValues.Rate("--disk-bw", text, bytes: true));

    [Theory]
    [InlineData("10M", "write SIZE/TIME")]
    [InlineData("10M/h", "needs a unit")]
    [InlineData("0/s", "must be positive")]
    [InlineData("10X/s", "not a size")]
    public void BadRatesSayWhy(string text, string message)
    {
        var e = Assert.Throws<DeviceOptionException>(() => OptionValues.Rate("--disk-bw", text, bytes: true));
        Assert.StartsWith($"--disk-bw {text}: ", e.Message);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void LimitsKeepWhatWasNotGiven()
    {
        var current = new RateLimits { BandwidthBytesPerS = 1000, OpsPerS = 50 };
        Assert.Null(OptionValues.Limits("disk", null, null, current));
        Assert.Equal(new RateLimits { BandwidthBytesPerS = 2048, OpsPerS = 50 }, OptionValues.Limits("disk", "2K/s", null, current));
        Assert.Equal(new RateLimits { BandwidthBytesPerS = 1000, OpsPerS = null }, OptionValues.Limits("disk", null, "none", current));
    }

    [Fact]
    public void NetworksTakeAnOptionalMac()
    {
        Assert.Equal(new VmNetwork { Network = "lan" }, OptionValues.Network("lan"));
        Assert.Equal(new VmNetwork { Network = "lan", Mac = "52:54:00:00:00:01" }, OptionValues.Network("lan,mac=52:54:00:00:00:01"));
    }
}
