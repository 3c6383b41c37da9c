using System.Collections.Immutable;
using HostVM.Machine.Cpu;
using HostVM.Machine.Devices;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.State;

/// <summary>
/// Everything a paused machine holds besides its RAM (saved apart, page by page) and its devices'
/// backends (disks and networks, which have their own snapshots): the harts in order, the clock, the
/// platform devices, and each virtio-mmio slot in order with its device. A restore needs a machine built
/// from the same configuration; <see cref="MemorySize"/>, the hart count and the slots' device types
/// are checked against it.
/// </summary>
public sealed record MachineState(
    ulong MemorySize,
    ImmutableArray<HartSnapshot> Harts,
    MachineClockState Clock,
    ClintState Clint,
    PlicState Plic,
    UartState Uart,
    GoldfishRtcState Rtc,
    HtifState? Htif,
    ImmutableArray<MmioTransportState> Virtio);
