using System.Collections.Immutable;

namespace HostVM.Machine.Virtio;

/// <summary>
/// What a snapshot keeps of virtio-net: both rate limiters and the frames from the network that wait for
/// receive buffers (oldest first). Frames held back by a limiter are in their queues, as not yet taken.
/// </summary>
public sealed record VirtioNetState(
    RateLimiterState ReceiveLimiter,
    RateLimiterState TransmitLimiter,
    ImmutableArray<ImmutableArray<byte>> Backlog) : VirtioDeviceState;
