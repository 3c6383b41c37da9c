using HostVM.Machine.Memory;
using HostVM.Machine.State;

namespace HostVM.Machine.Devices;

/// <summary>
/// The Goldfish real-time clock ("google,goldfish-rtc"): a 64-bit count of nanoseconds since the Unix
/// epoch, taken from the host's wall clock plus an offset that guest writes to TIME set, and one alarm.
/// Reading TIME_LOW latches the high half for the following TIME_HIGH read. Writing ALARM_LOW arms the
/// alarm at (ALARM_HIGH, ALARM_LOW); when the time reaches it the alarm disarms and the interrupt
/// becomes pending, and the line is high while an interrupt is pending and IRQ_ENABLED is set.
/// A host timer fires the alarm; dispose the device to stop it.
/// </summary>
public sealed class GoldfishRtc : IMmioDevice, IPersistent<GoldfishRtcState>, IDisposable
{
    public const ulong DefaultBase = 0x10_1000;
    public const ulong Size = 0x1000;
    public const int DefaultIrq = 11;

    public const ulong TimeLow = 0x00;
    public const ulong TimeHigh = 0x04;
    public const ulong AlarmLow = 0x08;
    public const ulong AlarmHigh = 0x0C;
    public const ulong IrqEnabled = 0x10;
    public const ulong ClearAlarm = 0x14;
    public const ulong AlarmStatus = 0x18;
    public const ulong ClearInterrupt = 0x1C;

    /// <summary>Longest single host-timer wait; the alarm is re-checked and re-armed after it.</summary>
    private static readonly TimeSpan MaxTimerWait = TimeSpan.FromHours(1);

    private readonly IInterruptController _irqs;
    private readonly int _irq;
    private readonly Func<DateTimeOffset> _wallClock;
    private readonly Lock _lock = new();
    private readonly Timer _timer;
    private Registers _state = new();
    private bool _irqLevel;
    private bool _disposed;

    public GoldfishRtc(IInterruptController irqs, int irq)
        : this(irqs, irq, static () => DateTimeOffset.UtcNow)
    {
    }

    /// <summary>With a wall clock of the caller's choosing (tests).</summary>
    public GoldfishRtc(IInterruptController irqs, int irq, Func<DateTimeOffset> wallClock)
    {
        ArgumentNullException.ThrowIfNull(irqs);
        ArgumentNullException.ThrowIfNull(wallClock);
        _irqs = irqs;
        _irq = irq;
        _wallClock = wallClock;
        _timer = new Timer(static self => ((GoldfishRtc)self!).CheckAlarm(), this, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>The guest's current time: nanoseconds since 1970-01-01T00:00:00Z.</summary>
    public ulong Now
    {
        get
        {
            lock (_lock)
            {
                return GuestNow();
            }
        }
    }

    public ulong Read(ulong offset, int size)
    {
        lock (_lock)
        {
            var s = _state;
            switch (offset)
            {
                case TimeLow:
                    ulong now = GuestNow();
                    s.LatchedTimeHigh = (uint)(now >> 32);
                    return size == 8 ? now : (uint)now;
                case TimeHigh:
                    return s.LatchedTimeHigh;
                case AlarmLow:
                    return size == 8 ? s.Alarm : (uint)s.Alarm;
                case AlarmHigh:
                    return (uint)(s.Alarm >> 32);
                case IrqEnabled:
                    return s.IrqEnabled ? 1UL : 0UL;
                case AlarmStatus:
                    return s.AlarmArmed ? 1UL : 0UL;
                default:
                    return 0;
            }
        }
    }

    public void Write(ulong offset, int size, ulong value)
    {
        lock (_lock)
        {
            var s = _state;
            switch (offset)
            {
                case TimeLow:
                    SetGuestTime(size == 8 ? value : RegisterBits.Merge(GuestNow(), 0, 4, value));
                    break;
                case TimeHigh:
                    SetGuestTime(RegisterBits.Merge(GuestNow(), 4, 4, value));
                    break;
                case AlarmLow:
                    s.Alarm = size == 8 ? value : RegisterBits.Merge(s.Alarm, 0, 4, value);
                    s.AlarmArmed = true;
                    ScheduleAlarm();
                    break;
                case AlarmHigh:
                    s.Alarm = RegisterBits.Merge(s.Alarm, 4, 4, value);
                    break;
                case IrqEnabled:
                    s.IrqEnabled = (value & 1) != 0;
                    break;
                case ClearAlarm:
                    s.AlarmArmed = false;
                    ScheduleAlarm();
                    break;
                case ClearInterrupt:
                    s.IrqPending = false;
                    break;
                default:
                    return;
            }

            UpdateIrq();
        }
    }

    /// <summary>Fires the alarm if its time has come, otherwise re-arms the host timer. The timer calls it; tests may too.</summary>
    public void CheckAlarm()
    {
        lock (_lock)
        {
            ScheduleAlarm();
            UpdateIrq();
        }
    }

    public GoldfishRtcState SaveState()
    {
        lock (_lock)
        {
            return _state.ToState();
        }
    }

    /// <summary>Restores the registers (the guest's clock offset continues from the host's wall clock) and re-drives the line.</summary>
    public void RestoreState(GoldfishRtcState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_lock)
        {
            _state = Registers.From(state);
            ScheduleAlarm();
            _irqLevel = _state.IrqPending && _state.IrqEnabled;
            _irqs.SetIrq(_irq, _irqLevel);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _timer.Dispose();
        }
    }

    private ulong HostNow() => (ulong)((_wallClock().UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100);

    private ulong GuestNow() => unchecked(HostNow() + (ulong)_state.OffsetNanoseconds);

    private void SetGuestTime(ulong time)
    {
        _state.OffsetNanoseconds = unchecked((long)(time - HostNow()));
        ScheduleAlarm(); // the alarm is in guest time, which just moved
    }

    /// <summary>Fires an armed alarm whose time has passed, or sets the host timer for it.</summary>
    private void ScheduleAlarm()
    {
        var s = _state;
        if (_disposed)
        {
            return;
        }

        if (!s.AlarmArmed)
        {
            _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return;
        }

        ulong now = GuestNow();
        if (s.Alarm <= now)
        {
            s.AlarmArmed = false;
            s.IrqPending = true;
            _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return;
        }

        ulong waitNs = s.Alarm - now;
        // Whole milliseconds, rounded up: the host timer has millisecond resolution, and waking early only re-arms it.
        var wait = waitNs >= (ulong)MaxTimerWait.Ticks * 100 ? MaxTimerWait : TimeSpan.FromMilliseconds((waitNs + 999_999) / 1_000_000);
        _timer.Change(wait, Timeout.InfiniteTimeSpan);
    }

    private void UpdateIrq()
    {
        bool level = _state.IrqPending && _state.IrqEnabled;
        if (level != _irqLevel)
        {
            _irqLevel = level;
            _irqs.SetIrq(_irq, level);
        }
    }

    /// <summary>The registers as the device changes them; <see cref="GoldfishRtcState"/> is their saved, immutable form.</summary>
    private sealed class Registers
    {
        public long OffsetNanoseconds { get; set; }
        public ulong Alarm { get; set; }
        public bool AlarmArmed { get; set; }
        public bool IrqEnabled { get; set; }
        public bool IrqPending { get; set; }
        public uint LatchedTimeHigh { get; set; }

        public GoldfishRtcState ToState() => new()
        {
            OffsetNanoseconds = OffsetNanoseconds, Alarm = Alarm, AlarmArmed = AlarmArmed,
            IrqEnabled = IrqEnabled, IrqPending = IrqPending, LatchedTimeHigh = LatchedTimeHigh,
        };

        public static Registers From(GoldfishRtcState s) => new()
        {
            OffsetNanoseconds = s.OffsetNanoseconds, Alarm = s.Alarm, AlarmArmed = s.AlarmArmed,
            IrqEnabled = s.IrqEnabled, IrqPending = s.IrqPending, LatchedTimeHigh = s.LatchedTimeHigh,
        };
    }
}
