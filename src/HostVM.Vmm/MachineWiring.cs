using HostVM.Machine.Virtio;

namespace HostVM.Vmm;

/// <summary>
/// What a machine is connected to in this process that no description can carry: where its serial console's bytes go,
/// and for <c>hostvm run --virtio-console</c>, where a virtio console's go. A restore must be given the same wiring.
/// </summary>
public sealed record MachineWiring(Action<byte> Serial)
{
    /// <summary>When set, the machine gets a virtio console (after the description's devices) whose output goes here.</summary>
    public Action<ReadOnlyMemory<byte>>? VirtioConsoleOutput { get; init; }

    /// <summary>Called with each device once it is made, before the next is opened (e.g. to start feeding a console's input).</summary>
    public Action<VirtioDevice>? DeviceMade { get; init; }
}
