using HostVM.Cli.Api;

namespace HostVM.Cli;

/// <summary>Command-line values of the daemon commands turned into what the API takes; a bad one is a <see cref="UsageException"/>.</summary>
public static class OptionValues
{
    public const string None = "none";

    /// <summary>A size such as 256M or 1G (a bare number is MiB), in whole MiB.</summary>
    public static long? Mib(string option, string? text)
    {
        if (text is null)
        {
            return null;
        }

        if (!SizeParser.TryParse(text, out ulong bytes) || bytes == 0)
        {
            throw new UsageException($"{option} {text}: not a size; write e.g. 256M or 1G (a bare number is MiB).");
        }

        if (bytes % (1 << 20) != 0)
        {
            throw new UsageException($"{option} {text}: not a whole number of MiB; write e.g. {Math.Max(1, (long)(bytes >> 20))}M.");
        }

        return (long)(bytes >> 20);
    }

    /// <summary>NET[,mac=52:54:00:..]: a network to attach a NIC to.</summary>
    public static VmNetwork Network(string text)
    {
        var list = KeyValueList.Parse("--network", text);
        if (list.Kind is not { } network)
        {
            throw new UsageException($"--network {text}: write --network NAME[,mac=52:54:00:xx:xx:xx].");
        }

        string? mac = list.Get("mac");
        list.RejectUnknown("mac");
        return new VmNetwork { Network = network, Mac = mac };
    }

    /// <summary>A rate (10M/s, 1M/100ms, 500/s) in units per second; "none" (or 0) lifts the limit: null.</summary>
    public static long? Rate(string option, string text, bool bytes)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.Trim() is None or "0" ? null : RateLimitParser.PerSecond(option, text, bytes);
    }

    /// <summary>The limits the four rate options ask for over <paramref name="current"/>; null if none of them was given.</summary>
    public static RateLimits? Limits(string prefix, string? bandwidth, string? ops, RateLimits? current = null)
    {
        if (bandwidth is null && ops is null)
        {
            return null;
        }

        current ??= new RateLimits();
        return new RateLimits
        {
            BandwidthBytesPerS = bandwidth is null ? current.BandwidthBytesPerS : Rate($"--{prefix}-bw", bandwidth, bytes: true),
            OpsPerS = ops is null ? current.OpsPerS : Rate($"--{prefix}-ops", ops, bytes: false),
        };
    }
}
