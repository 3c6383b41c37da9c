using HostVM.Machine;
using HostVM.Machine.Virtio;

namespace HostVM.Vmm;

/// <summary>
/// A machine <see cref="MachineBuilder"/> made, with its devices by the description's ids (the machine owns them: disposing
/// it closes their backends) and notes for the user (the host ports a user network's forwards were bound to).
/// </summary>
public sealed record BuiltMachine(
    VirtualMachine Machine,
    IReadOnlyDictionary<string, VirtioBlock> Drives,
    IReadOnlyDictionary<string, VirtioNet> NetworkInterfaces,
    VirtioBalloon? Balloon,
    VirtioConsole? Console,
    IReadOnlyList<string> Notes);
