namespace HostVM.Machine.Virtio;

/// <summary>Feature bits that belong to the transport and the rings, not to one device type (Virtio 1.2 §6).</summary>
public static class VirtioFeatures
{
    public const ulong RingIndirectDesc = 1UL << 28;
    public const ulong RingEventIdx = 1UL << 29;
    public const ulong Version1 = 1UL << 32;

    /// <summary>What every HostVM device offers on top of its own bits (VERSION_1 only on the modern transport).</summary>
    public const ulong Transport = RingIndirectDesc | RingEventIdx;
}
