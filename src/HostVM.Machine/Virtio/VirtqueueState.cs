namespace HostVM.Machine.Virtio;

/// <summary>
/// What a snapshot keeps of a split virtqueue besides guest RAM: its layout and the device's three
/// indices (the next available entry to take, the next used entry to write, and the used index the
/// driver was last told about, which EVENT_IDX needs to decide the next interrupt).
/// </summary>
public sealed record VirtqueueState(
    ushort Size,
    ulong DescAddress,
    ulong AvailAddress,
    ulong UsedAddress,
    bool EventIndex,
    ushort LastAvail,
    ushort UsedIndex,
    ushort SignalledUsed);
