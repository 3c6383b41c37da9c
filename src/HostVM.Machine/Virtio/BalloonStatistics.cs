namespace HostVM.Machine.Virtio;

/// <summary>
/// Memory statistics the guest's balloon driver reported (Virtio 1.2 §5.5.6.3), in bytes or counts;
/// null where the guest did not report a value.
/// </summary>
public sealed record BalloonStatistics(
    ulong? SwapIn,
    ulong? SwapOut,
    ulong? MajorFaults,
    ulong? MinorFaults,
    ulong? FreeMemory,
    ulong? TotalMemory,
    ulong? AvailableMemory,
    ulong? DiskCaches,
    DateTimeOffset ReceivedAt);
