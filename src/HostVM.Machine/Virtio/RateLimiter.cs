using System.Diagnostics;
using HostVM.Machine.State;

namespace HostVM.Machine.Virtio;

/// <summary>
/// A device's bandwidth and operations buckets. A request goes only when both have room, and then takes
/// from both. The limits can be changed while the VM runs (the buckets start full again, as
/// Firecracker's PATCH does). Thread-safe.
/// </summary>
public sealed class RateLimiter : IPersistent<RateLimiterState>
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
    /// Takes one operation of <paramref name="bytes"/> and returns true, or takes nothing, returns false
    /// and says how long to wait before asking again (never zero, so a caller cannot mistake it for a go).
    /// </summary>
    public bool TryConsume(long bytes, out TimeSpan wait) => TryConsume(bytes, 1, out wait);

    /// <summary>As <see cref="TryConsume(long, out TimeSpan)"/>, for <paramref name="operations"/> at once (a GSO frame's segments).</summary>
    public bool TryConsume(long bytes, int operations, out TimeSpan wait)
    {
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            long ticks = Math.Max(_bytes?.TicksUntil(bytes, now) ?? 0, _ops?.TicksUntil(operations, now) ?? 0);
            if (ticks > 0)
            {
                Throttled++;
                wait = TimeSpan.FromTicks(Math.Max(1, (long)Math.Ceiling(ticks * (double)TimeSpan.TicksPerSecond / Stopwatch.Frequency)));
                return false;
            }

            _bytes?.Take(bytes);
            _ops?.Take(operations);
            wait = TimeSpan.Zero;
            return true;
        }
    }

    public RateLimiterState SaveState()
    {
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            return new RateLimiterState(Settings, _bytes?.SaveState(now), _ops?.SaveState(now));
        }
    }

    /// <summary>Takes the saved limits and bucket levels (a bucket saved without a level starts full).</summary>
    public void RestoreState(RateLimiterState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Update(state.Settings);
        long now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            if (state.Bandwidth is { } bandwidth)
            {
                _bytes?.RestoreState(bandwidth, now);
            }

            if (state.Operations is { } operations)
            {
                _ops?.RestoreState(operations, now);
            }
        }
    }
}
