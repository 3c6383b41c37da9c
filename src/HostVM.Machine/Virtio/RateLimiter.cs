using System.Diagnostics;

namespace HostVM.Machine.Virtio;

/// <summary>
/// A device's bandwidth and operations buckets. A request goes only when both have room, and then takes
/// from both. The limits can be changed while the VM runs (the buckets start full again, as
/// Firecracker's PATCH does). Thread-safe.
/// </summary>
public sealed class RateLimiter
{
    private readonly Lock _lock = new();
    private TokenBucket? _bytes;
    private TokenBucket? _ops;

    public RateLimiter(RateLimitSettings? settings = null) => Update(settings ?? RateLimitSettings.Unlimited);

    public RateLimitSettings Settings { get; private set; } = RateLimitSettings.Unlimited;

    /// <summary>Requests that had to wait (a statistic).</summary>
    public long Throttled { get; private set; }

    public void Update(RateLimitSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Bandwidth?.Validate("bandwidth limit");
        settings.Operations?.Validate("operations limit");
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            Settings = settings;
            _bytes = settings.Bandwidth is null ? null : new TokenBucket(settings.Bandwidth, now);
            _ops = settings.Operations is null ? null : new TokenBucket(settings.Operations, now);
        }
    }

    /// <summary>
    /// Takes one operation of <paramref name="bytes"/> and returns <see cref="TimeSpan.Zero"/>, or takes
    /// nothing and returns how long to wait before asking again.
    /// </summary>
    public TimeSpan TryConsume(long bytes)
    {
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            long wait = Math.Max(_bytes?.TicksUntil(bytes, now) ?? 0, _ops?.TicksUntil(1, now) ?? 0);
            if (wait > 0)
            {
                Throttled++;
                // Rounded up: a wait under one TimeSpan tick must not read as TimeSpan.Zero ("taken").
                return TimeSpan.FromTicks(Math.Max(1, (long)Math.Ceiling((double)wait * TimeSpan.TicksPerSecond / Stopwatch.Frequency)));
            }

            _bytes?.Take(bytes);
            _ops?.Take(1);
            return TimeSpan.Zero;
        }
    }
}
