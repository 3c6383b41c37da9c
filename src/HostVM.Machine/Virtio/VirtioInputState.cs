using System.Collections.Immutable;

namespace HostVM.Machine.Virtio;

/// <summary>What a snapshot keeps of virtio-input: the events waiting for buffers and the configuration selector the driver wrote.</summary>
public sealed record VirtioInputState(ImmutableArray<InputEvent> Pending, byte Select, byte Subsel) : VirtioDeviceState;
