using HostVM.Machine.Devices;

namespace HostVM.Machine.Tests.Devices;

public sealed class GoldfishRtcTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2025, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private readonly FakeInterruptController _irqs = new();
    private readonly GoldfishRtc _rtc;
    private DateTimeOffset _now = Start;

    public GoldfishRtcTests()
    {
        _rtc = new GoldfishRtc(_irqs, 11, () => _now);
    }

    public void Dispose() => _rtc.Dispose();

    private static ulong Nanoseconds(DateTimeOffset t) => (ulong)(t - DateTimeOffset.UnixEpoch).Ticks * 100;

    private ulong ReadTime()
    {
        ulong low = _rtc.Read(GoldfishRtc.TimeLow, 4);
        ulong high = _rtc.Read(GoldfishRtc.TimeHigh, 4);
        return (high << 32) | low;
    }

    [Fact]
    public void Time_is_nanoseconds_since_the_unix_epoch()
    {
        Assert.Equal(Nanoseconds(Start), ReadTime());
        Assert.Equal(1_735_787_045_000_000_000UL, ReadTime());
    }

    [Fact]
    public void Reading_time_low_latches_time_high()
    {
        // Just before the high half rolls over.
        ulong before = Nanoseconds(Start);
        ulong rollover = ((before >> 32) + 1) << 32;
        _now = Start.AddTicks((long)((rollover - before) / 100) - 1);

        ulong low = _rtc.Read(GoldfishRtc.TimeLow, 4);
        _now = _now.AddSeconds(1); // the clock crosses the 2^32 boundary between the two reads
        ulong high = _rtc.Read(GoldfishRtc.TimeHigh, 4);

        Assert.Equal(rollover >> 32, high + 1);
        Assert.True(low > 0xFFFF_0000);
    }

    [Fact]
    public void Writing_time_sets_an_offset_that_keeps_running()
    {
        ulong target = Nanoseconds(new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero));
        _rtc.Write(GoldfishRtc.TimeHigh, 4, target >> 32);
        _rtc.Write(GoldfishRtc.TimeLow, 4, (uint)target);

        Assert.Equal(target, ReadTime());
        _now = _now.AddSeconds(3);
        Assert.Equal(target + 3_000_000_000, ReadTime());
    }

    [Fact]
    public void Alarm_fires_when_time_reaches_it_and_raises_irq_when_enabled()
    {
        ulong alarm = Nanoseconds(Start) + 5_000_000_000;
        _rtc.Write(GoldfishRtc.IrqEnabled, 4, 1);
        _rtc.Write(GoldfishRtc.AlarmHigh, 4, alarm >> 32);
        _rtc.Write(GoldfishRtc.AlarmLow, 4, (uint)alarm);

        Assert.Equal(1UL, _rtc.Read(GoldfishRtc.AlarmStatus, 4));
        Assert.Equal(alarm, (_rtc.Read(GoldfishRtc.AlarmHigh, 4) << 32) | _rtc.Read(GoldfishRtc.AlarmLow, 4));
        Assert.Equal(1UL, _rtc.Read(GoldfishRtc.IrqEnabled, 4));

        _now = _now.AddSeconds(4);
        _rtc.CheckAlarm();
        Assert.False(_irqs[11]);

        _now = _now.AddSeconds(1);
        _rtc.CheckAlarm();
        Assert.True(_irqs[11]);
        Assert.Equal(0UL, _rtc.Read(GoldfishRtc.AlarmStatus, 4));

        _rtc.Write(GoldfishRtc.ClearInterrupt, 4, 1);
        Assert.False(_irqs[11]);
    }

    [Fact]
    public void Alarm_in_the_past_fires_at_once()
    {
        _rtc.Write(GoldfishRtc.IrqEnabled, 4, 1);
        _rtc.Write(GoldfishRtc.AlarmHigh, 4, 0);
        _rtc.Write(GoldfishRtc.AlarmLow, 4, 1);

        Assert.True(_irqs[11]);
    }

    [Fact]
    public void Disabled_irq_holds_the_line_low_until_enabled()
    {
        _rtc.Write(GoldfishRtc.AlarmLow, 4, 1);
        Assert.False(_irqs[11]);

        _rtc.Write(GoldfishRtc.IrqEnabled, 4, 1);
        Assert.True(_irqs[11]);
    }

    [Fact]
    public void Clear_alarm_disarms_it()
    {
        ulong alarm = Nanoseconds(Start) + 1_000;
        _rtc.Write(GoldfishRtc.IrqEnabled, 4, 1);
        _rtc.Write(GoldfishRtc.AlarmHigh, 4, alarm >> 32);
        _rtc.Write(GoldfishRtc.AlarmLow, 4, (uint)alarm);
        _rtc.Write(GoldfishRtc.ClearAlarm, 4, 1);

        _now = _now.AddSeconds(1);
        _rtc.CheckAlarm();
        Assert.False(_irqs[11]);
        Assert.Equal(0UL, _rtc.Read(GoldfishRtc.AlarmStatus, 4));
    }

    [Fact]
    public void Host_timer_fires_a_real_alarm()
    {
        var irqs = new FakeInterruptController();
        using var rtc = new GoldfishRtc(irqs, 11);
        ulong alarm = rtc.Now + 20_000_000; // 20 ms
        rtc.Write(GoldfishRtc.IrqEnabled, 4, 1);
        rtc.Write(GoldfishRtc.AlarmHigh, 4, alarm >> 32);
        rtc.Write(GoldfishRtc.AlarmLow, 4, (uint)alarm);

        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!irqs[11] && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(5);
        }

        Assert.True(irqs[11]);
        Assert.True(rtc.Now >= alarm);
    }

    [Fact]
    public void Restore_keeps_the_guest_offset()
    {
        _rtc.Write(GoldfishRtc.TimeHigh, 4, 0);
        _rtc.Write(GoldfishRtc.TimeLow, 4, 1000);
        var saved = _rtc.SaveState();

        using var other = new GoldfishRtc(new FakeInterruptController(), 11, () => _now);
        other.RestoreState(saved);
        Assert.Equal(1000UL, other.Read(GoldfishRtc.TimeLow, 4));
    }
}
