namespace HostVM.Machine.Virtio;

/// <summary>
/// What a snapshot keeps of a rate limiter: the limits in force (they may have been changed while the VM
/// ran) and each bucket's level; a null bucket is an unlimited one.
/// </summary>
public sealed record RateLimiterState(RateLimitSettings Settings, TokenBucketState? Bandwidth, TokenBucketState? Operations);
