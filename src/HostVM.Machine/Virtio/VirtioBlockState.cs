namespace HostVM.Machine.Virtio;

/// <summary>
/// What a snapshot keeps of virtio-blk: its rate limiter. A request held back by the limiter is not
/// here: its queue is saved as if it had not been taken yet, so a restored device takes it again.
/// </summary>
public sealed record VirtioBlockState(RateLimiterState Limiter) : VirtioDeviceState;
