using HostVM.Machine.Virtio;

namespace HostVM.Vmm;

/// <summary>Converts the API's rate limiters to the devices' settings (a bucket of size 0 or refill time 0 is no limit).</summary>
public static class RateLimits
{
    public static RateLimitSettings ToSettings(Api.RateLimiter? limiter, string what) =>
        limiter is null ? RateLimitSettings.Unlimited : new(ToBucket(limiter.Bandwidth, $"{what}.bandwidth"), ToBucket(limiter.Ops, $"{what}.ops"));

    /// <summary>A PATCH: buckets the request names replace the current ones; the others stay.</summary>
    public static RateLimitSettings Merge(RateLimitSettings current, Api.RateLimiter? update, string what)
    {
        ArgumentNullException.ThrowIfNull(current);
        if (update is null)
        {
            return current;
        }

        return new(
            update.Bandwidth is null ? current.Bandwidth : ToBucket(update.Bandwidth, $"{what}.bandwidth"),
            update.Ops is null ? current.Operations : ToBucket(update.Ops, $"{what}.ops"));
    }

    public static Api.RateLimiter? ToApi(RateLimitSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return settings.IsUnlimited ? null : new Api.RateLimiter { Bandwidth = ToApi(settings.Bandwidth), Ops = ToApi(settings.Operations) };
    }

    private static Api.TokenBucket? ToApi(TokenBucketSettings? bucket) => bucket is null
        ? null
        : new Api.TokenBucket
        {
            Size = bucket.Size,
            RefillTime = (long)bucket.RefillTime.TotalMilliseconds,
            OneTimeBurst = bucket.OneTimeBurst == 0 ? null : bucket.OneTimeBurst,
        };

    private static TokenBucketSettings? ToBucket(Api.TokenBucket? bucket, string what)
    {
        if (bucket is null)
        {
            return null;
        }

        if (bucket.Size is not { } size || bucket.RefillTime is not { } refill)
        {
            throw new VmmFault($"{what}: a token bucket needs size and refill_time.");
        }

        if (size < 0 || refill < 0 || bucket.OneTimeBurst < 0)
        {
            throw new VmmFault($"{what}: size, refill_time and one_time_burst cannot be negative.");
        }

        if (size == 0 || refill == 0)
        {
            return null; // Firecracker's convention: an empty or never-refilling bucket means no limit
        }

        var settings = new TokenBucketSettings(size, TimeSpan.FromMilliseconds(refill), bucket.OneTimeBurst ?? 0);
        try
        {
            settings.Validate(what);
        }
        catch (ArgumentException e)
        {
            throw new VmmFault(e.Message);
        }

        return settings;
    }
}
