using System.Diagnostics;

namespace HostVM.Machine.Virtio;

/// <summary>
/// A token bucket that refills continuously (from the clock, not in fixed ticks) and tells a caller that
/// must wait exactly how long until it may go. A request larger than the bucket is let through when the
/// bucket is full and leaves it in debt, so big requests are neither starved nor over-served: over any
/// long interval the tokens spent equal Size × time / RefillTime plus the one-time burst. (Firecracker's
/// limiter instead waits a fixed 100 ms whenever it runs dry, which caps the achievable rate below the
/// configured one; Cloud Hypervisor documents that flaw.) Not thread-safe: <see cref="RateLimiter"/> locks.
/// </summary>
public sealed class TokenBucket
{
    private readonly double _size;
    private readonly double _ticksPerToken;
    private double _tokens;
    private double _burst;
    private long _lastRefill;

    public TokenBucket(TokenBucketSettings settings, long now)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Settings = settings;
        _size = settings.Size;
        _ticksPerToken = settings.RefillTime.TotalSeconds * Stopwatch.Frequency / settings.Size;
        _tokens = _size;
        _burst = settings.OneTimeBurst;
        _lastRefill = now;
    }

    public TokenBucketSettings Settings { get; }

    /// <summary>Tokens available now (bucket plus what is left of the one-time burst); negative while in debt.</summary>
    public double Available(long now)
    {
        Refill(now);
        return _tokens + _burst;
    }

    /// <summary>Stopwatch ticks until <paramref name="tokens"/> could be taken; 0 = now.</summary>
    public long TicksUntil(double tokens, long now)
    {
        Refill(now);
        if (_burst + _tokens >= tokens || _tokens >= _size)
        {
            return 0;
        }

        double target = Math.Min(tokens - _burst, _size);
        return Math.Max(1, (long)Math.Ceiling((target - _tokens) * _ticksPerToken));
    }

    /// <summary>Takes <paramref name="tokens"/> (call after <see cref="TicksUntil"/> returned 0).</summary>
    public void Take(double tokens)
    {
        double fromBurst = Math.Min(_burst, tokens);
        _burst -= fromBurst;
        _tokens -= tokens - fromBurst;
    }

    private void Refill(long now)
    {
        long elapsed = now - _lastRefill;
        if (elapsed <= 0)
        {
            return;
        }

        _lastRefill = now;
        _tokens = Math.Min(_size, _tokens + (elapsed / _ticksPerToken));
    }

    /// <summary>The bucket's level at host time <paramref name="now"/>.</summary>
    public TokenBucketState SaveState(long now) =>
        new(_tokens, _burst, Stopwatch.GetElapsedTime(_lastRefill, Math.Max(now, _lastRefill)));

    /// <summary>Takes the level of a saved bucket, as if it had last refilled that long before <paramref name="now"/>.</summary>
    public void RestoreState(TokenBucketState state, long now)
    {
        ArgumentNullException.ThrowIfNull(state);
        _tokens = Math.Min(_size, state.Tokens);
        _burst = Math.Max(0, state.Burst);
        _lastRefill = now - (long)(state.SinceRefill.TotalSeconds * Stopwatch.Frequency);
    }
}
