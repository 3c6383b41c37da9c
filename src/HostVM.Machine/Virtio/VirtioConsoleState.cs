using System.Collections.Immutable;

namespace HostVM.Machine.Virtio;

/// <summary>What a snapshot keeps of virtio-console: the console input the guest has not read yet.</summary>
public sealed record VirtioConsoleState(ImmutableArray<byte> PendingInput) : VirtioDeviceState;
