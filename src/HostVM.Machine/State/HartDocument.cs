using HostVM.Machine.Cpu;

namespace HostVM.Machine.State;

/// <summary>
/// A <see cref="HartSnapshot"/> in the snapshot's JSON: <see cref="HartState"/>'s bytes as they are (one sequential unmanaged
/// struct, little-endian on every host HostVM runs on), in base64. A change to that struct's layout is a new snapshot format
/// version; the golden files catch one made by mistake.
/// </summary>
internal sealed record HartDocument(
    byte[] Registers,
    HartRunState RunState,
    bool StopSelfPending,
    bool SupervisorTimerFromFirmware,
    ulong LastTrapCause,
    ulong LastTrapValue);
