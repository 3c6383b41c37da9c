using System.Collections.Immutable;
using HostVM.Machine.Devices;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.State;

/// <summary>
/// <see cref="MachineState"/> as the snapshot's JSON holds it: the same, but each hart's registers as bytes (JSON cannot
/// write <see cref="Cpu.HartState"/>'s fixed buffers).
/// </summary>
internal sealed record MachineStateDocument(
    ulong MemorySize,
    ImmutableArray<HartDocument> Harts,
    MachineClockState Clock,
    ClintState Clint,
    PlicState Plic,
    UartState Uart,
    GoldfishRtcState Rtc,
    HtifState? Htif,
    ImmutableArray<MmioTransportState> Virtio);
