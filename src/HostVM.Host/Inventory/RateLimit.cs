namespace HostVM.Host.Inventory;

/// <summary>A device's limits in plain rates (null: unlimited); the VMM gets them as one-second token buckets.</summary>
public sealed record RateLimit
{
    public long? BandwidthBytesPerS { get; init; }

    public long? OpsPerS { get; init; }
}
