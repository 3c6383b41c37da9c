namespace HostVM.Machine.Devices;

/// <summary>
/// What a snapshot keeps of the machine's clock: the guest's time (mtime, 10 MHz ticks) when it was
/// saved. Not a host timestamp: a restore, on this host or another, continues the guest's timeline from it.
/// </summary>
public sealed record MachineClockState(ulong Time);
