using System.Collections.Immutable;

namespace HostVM.Machine.Virtio;

/// <summary>
/// What a snapshot keeps of virtio-console: the console input the guest has not read yet, in the pieces
/// it arrived in (the first may be partly read already: only its rest is here). The pieces matter: one
/// receive buffer never takes bytes of two pieces.
/// </summary>
public sealed record VirtioConsoleState(ImmutableArray<ImmutableArray<byte>> PendingInput) : VirtioDeviceState;
