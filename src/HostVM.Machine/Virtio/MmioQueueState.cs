namespace HostVM.Machine.Virtio;

/// <summary>
/// One queue as the transport saves it: the registers the driver wrote, and the ring's indices when the
/// device was running it (null before DRIVER_OK or when the driver set no queue up there).
/// </summary>
public sealed record MmioQueueState(uint Size, bool Ready, uint Pfn, uint Align, ulong Desc, ulong Avail, ulong Used, VirtqueueState? Ring);
