namespace HostVM.Machine.Virtio;

/// <summary>
/// One token bucket, in the shape of Firecracker's <c>TokenBucket</c>: it holds up to <see cref="Size"/>
/// tokens (bytes or operations) and refills from empty to full in <see cref="RefillTime"/>, so the
/// sustained rate is Size / RefillTime; <see cref="OneTimeBurst"/> extra tokens are available once, at
/// the start, and never come back.
/// </summary>
public sealed record TokenBucketSettings(long Size, TimeSpan RefillTime, long OneTimeBurst = 0)
{
    /// <summary>Tokens per second.</summary>
    public double Rate => Size / RefillTime.TotalSeconds;

    /// <summary>Throws with a message naming the bad field.</summary>
    public void Validate(string what)
    {
        if (Size <= 0)
        {
            throw new ArgumentException($"{what}: the bucket size must be positive (got {Size}).");
        }

        if (RefillTime <= TimeSpan.Zero)
        {
            throw new ArgumentException($"{what}: the refill time must be positive (got {RefillTime.TotalMilliseconds} ms).");
        }

        if (OneTimeBurst < 0)
        {
            throw new ArgumentException($"{what}: the one-time burst cannot be negative (got {OneTimeBurst}).");
        }
    }
}
