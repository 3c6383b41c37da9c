namespace HostVM.Machine.Devices;

/// <summary>
/// What a snapshot keeps of the Goldfish RTC: the guest's offset from host wall-clock time (ns), the
/// alarm time and whether it is armed, the interrupt enable/pending bits, and TIME_HIGH as latched by
/// the last TIME_LOW read.
/// </summary>
public sealed record GoldfishRtcState
{
    public long OffsetNanoseconds { get; init; }
    public ulong Alarm { get; init; }
    public bool AlarmArmed { get; init; }
    public bool IrqEnabled { get; init; }
    public bool IrqPending { get; init; }
    public uint LatchedTimeHigh { get; init; }
}
