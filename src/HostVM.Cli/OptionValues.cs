using System.CommandLine;
using System.Globalization;
using HostVM.Cli.Api;

namespace HostVM.Cli;

/// <summary>Command-line values of the daemon commands turned into what the API takes; a bad one is a <see cref="UsageException"/>.</summary>
public static class OptionValues
{
    public const string None = "none";

    /// <summary>--project on the commands that create something: the project it goes into.</summary>
    public static Option<string?> ProjectOption(string noun) => new("--project") { Description = $"The project the {noun} goes into (default: the token's, else \"default\"); see `hostvm project list`." };

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

    /// <summary>A duration as the daemon takes it: a whole number and a unit, s, m, h, d or w ("90m", "30d"); the daemon's own parser, so both agree.</summary>
    public static TimeSpan Duration(string option, string text) =>
        HostVM.Host.Api.Durations.TryParse(text, out var span)
            ? span
            : throw new UsageException($"{option} {text}: write a whole number and a unit (s, m, h, d or w), e.g. 12h or 30d; at most 10 years.");

    /// <summary>A point in time: a duration back from <paramref name="now"/> ("1h": an hour ago), or a date and time ("2026-01-31", "2026-01-31T10:00", local unless it says its offset).</summary>
    public static DateTimeOffset? Time(string option, string? text, DateTimeOffset now)
    {
        if (text is null)
        {
            return null;
        }

        string t = text.Trim();
        if (t.Length > 0 && char.IsAsciiDigit(t[0]) && char.IsAsciiLetter(t[^1]) && !t.Contains('-', StringComparison.Ordinal) && !t.Contains(':', StringComparison.Ordinal))
        {
            return now - Duration(option, t);
        }

        if (DateTimeOffset.TryParse(t, CultureInfo.InvariantCulture, DateTimeStyles.AssumeLocal, out var at))
        {
            return at;
        }

        throw new UsageException($"{option} {text}: write how long ago (30m, 1h, 2d) or a date and time (2026-01-31 or 2026-01-31T10:00, local time unless it ends in Z or an offset).");
    }

    /// <summary>A quota: a count, or with <paramref name="size"/> a size (1G; a bare number is MiB); "none" is no limit (null).</summary>
    public static long? Quota(string option, string text, bool size)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim();
        if (t == None)
        {
            return null;
        }

        if (long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out long n))
        {
            return n; // a bare number: a count, or MiB (0 is allowed: nothing more may be created)
        }

        return size
            ? Mib(option, t)
            : throw new UsageException($"{option} {text}: write a whole number of 0 or more, or none for no limit.");
    }
}
