namespace HostVM.Machine.Virtio;

/// <summary>
/// What a snapshot keeps of a token bucket: the tokens in it, what is left of the one-time burst, and
/// how long ago it last refilled. A duration, not a host timestamp: the bucket may be restored on
/// another host, whose clock started elsewhere.
/// </summary>
public sealed record TokenBucketState(double Tokens, double Burst, TimeSpan SinceRefill);
