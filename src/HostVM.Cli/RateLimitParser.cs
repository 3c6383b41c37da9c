using System.Globalization;
using HostVM.Machine.Virtio;

namespace HostVM.Cli;

/// <summary>
/// Rate limits on the command line, in the shape of Firecracker's token buckets:
/// <c>bw=SIZE/TIME</c> (bucket of SIZE bytes refilled in TIME, e.g. <c>bw=1M/100ms</c> = 10 MiB/s),
/// <c>ops=COUNT/TIME</c>, and the one-time bursts <c>bw-burst=SIZE</c>, <c>ops-burst=COUNT</c>;
/// each optionally prefixed (<c>rx-bw=</c>, <c>tx-bw=</c> on NICs).
/// </summary>
public static class RateLimitParser
{
    public const string Keys = "bw, bw-burst, ops, ops-burst";

    public static RateLimitSettings Parse(KeyValueList list, string prefix = "")
    {
        ArgumentNullException.ThrowIfNull(list);
        var bandwidth = Bucket(list, prefix + "bw", bytes: true);
        var ops = Bucket(list, prefix + "ops", bytes: false);
        return new RateLimitSettings(bandwidth, ops);
    }

    private static TokenBucketSettings? Bucket(KeyValueList list, string key, bool bytes)
    {
        string? text = list.Get(key);
        string? burstText = list.Get(key + "-burst");
        if (text is null)
        {
            if (burstText is not null)
            {
                throw new DeviceOptionException($"{list.Option} {list.Text}: {key}-burst= needs {key}= as well.");
            }

            return null;
        }

        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            throw new DeviceOptionException($"{list.Option} {list.Text}: {key}={text}: write {(bytes ? "SIZE" : "COUNT")}/TIME, e.g. {key}={(bytes ? "1M" : "100")}/100ms.");
        }

        string where = $"{list.Option} {list.Text}: {key}";
        long size = Amount(where, text[..slash], bytes);
        TimeSpan refill = Duration(where, text[(slash + 1)..]);
        long burst = burstText is null ? 0 : Amount($"{list.Option} {list.Text}: {key}-burst", burstText, bytes);
        if (size <= 0)
        {
            throw new DeviceOptionException($"{list.Option} {list.Text}: {key}={text}: the amount must be positive.");
        }

        return new TokenBucketSettings(size, refill, burst);
    }

    /// <summary>
    /// A rate as the daemon takes it, in units per second: <c>AMOUNT/TIME</c> with a time of
    /// <c>s</c>, <c>ms</c> or a number of them: <c>10M/s</c>, <c>1M/100ms</c> (both 10 MiB/s), <c>500/s</c>.
    /// </summary>
    public static long PerSecond(string option, string text, bool bytes)
    {
        ArgumentNullException.ThrowIfNull(text);
        string where = $"{option} {text}";
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash < 0)
        {
            throw new DeviceOptionException($"{where}: write {(bytes ? "SIZE" : "COUNT")}/TIME, e.g. {(bytes ? "10M/s" : "500/s")}.");
        }

        long amount = Amount(where, text[..slash], bytes);
        TimeSpan per = Duration(where, text[(slash + 1)..]);
        if (amount <= 0)
        {
            throw new DeviceOptionException($"{where}: the amount must be positive.");
        }

        return Math.Max(1, (long)Math.Round(amount / per.TotalSeconds));
    }

    private static long Amount(string where, string text, bool bytes)
    {
        text = text.Trim();
        long multiplier = 1;
        if (bytes && text.Length > 0 && char.IsLetter(text[^1]))
        {
            multiplier = char.ToUpperInvariant(text[^1]) switch
            {
                'K' => 1L << 10,
                'M' => 1L << 20,
                'G' => 1L << 30,
                _ => 0,
            };
            text = text[..^1];
        }

        if (multiplier == 0 || !long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long value))
        {
            throw new DeviceOptionException($"{where}: '{text}' is not {(bytes ? "a size like 512K or 1M" : "a whole number")}.");
        }

        return checked(value * multiplier);
    }

    private static TimeSpan Duration(string where, string text)
    {
        text = text.Trim();
        double scale;
        if (text.EndsWith("ms", StringComparison.Ordinal))
        {
            scale = 1;
            text = text[..^2];
        }
        else if (text.EndsWith('s'))
        {
            scale = 1000;
            text = text[..^1];
        }
        else
        {
            throw new DeviceOptionException($"{where}: the time '{text}' needs a unit: ms or s (e.g. 100ms, 1s).");
        }

        double value = 1; // a bare unit: per second, per millisecond
        if (text.Length > 0 && (!double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value) || value <= 0))
        {
            throw new DeviceOptionException($"{where}: '{text}' is not a positive time.");
        }

        return TimeSpan.FromMilliseconds(value * scale);
    }
}
