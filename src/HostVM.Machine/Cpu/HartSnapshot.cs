namespace HostVM.Machine.Cpu;

/// <summary>
/// What a snapshot keeps of a hart: a copy of its architectural state (registers, CSRs, PMP, timer
/// deadlines and the LR/SC reservation are all in <see cref="HartState"/>), its HSM run state, a stop it
/// asked for that the run loop has not carried out yet, and the last trap for reports. A pending WFI
/// needs nothing: the pc is past the WFI before the hart sleeps, and a WFI may end at any time.
/// TLBs and decoded code are caches, not state: a restore drops them.
/// </summary>
public sealed record HartSnapshot(
    HartState Registers,
    HartRunState RunState,
    bool StopSelfPending,
    bool SupervisorTimerFromFirmware,
    ulong LastTrapCause,
    ulong LastTrapValue);
