namespace HostVM.Machine.Virtio;

/// <summary>A device's limits: a bucket of bytes and a bucket of operations (requests or frames); null = unlimited.</summary>
public sealed record RateLimitSettings(TokenBucketSettings? Bandwidth, TokenBucketSettings? Operations)
{
    public static readonly RateLimitSettings Unlimited = new(null, null);

    public bool IsUnlimited => Bandwidth is null && Operations is null;
}
