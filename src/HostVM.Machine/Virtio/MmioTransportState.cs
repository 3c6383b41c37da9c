using System.Collections.Immutable;

namespace HostVM.Machine.Virtio;

/// <summary>
/// What a snapshot keeps of one virtio-mmio slot: the transport's registers, each queue, and the state of
/// the device behind it. <see cref="DeviceType"/> and <see cref="Legacy"/> are the shape a restore checks.
/// </summary>
public sealed record MmioTransportState(
    VirtioDeviceType DeviceType,
    bool Legacy,
    uint Status,
    uint InterruptStatus,
    uint DeviceFeaturesSelect,
    uint DriverFeaturesSelect,
    ulong DriverFeatures,
    uint QueueSelect,
    uint ConfigGeneration,
    uint GuestPageSize,
    bool Active,
    string? Error,
    ImmutableArray<MmioQueueState> Queues,
    VirtioDeviceState Device);
