using HostVM.Machine.Devices;

namespace HostVM.Machine.Tests.Devices;

public class ClintTests
{
    private readonly FakeHart[] _harts = FakeHart.Create(3);
    private readonly MachineClock _clock = new();
    private readonly Clint _clint;

    public ClintTests()
    {
        _clint = new Clint(_harts, _clock);
    }

    [Fact]
    public void Msip_bit0_drives_machine_software_interrupt_of_that_hart_only()
    {
        _clint.Write(Clint.MsipOffset + (4 * 1), 4, 1);

        Assert.True(_harts[1][InterruptLine.MachineSoftware]);
        Assert.False(_harts[0][InterruptLine.MachineSoftware]);
        Assert.False(_harts[2][InterruptLine.MachineSoftware]);
        Assert.Equal(1UL, _clint.Read(Clint.MsipOffset + 4, 4));

        _clint.Write(Clint.MsipOffset + 4, 4, 0);
        Assert.False(_harts[1][InterruptLine.MachineSoftware]);
        Assert.Equal(0UL, _clint.Read(Clint.MsipOffset + 4, 4));
    }

    [Fact]
    public void Msip_keeps_only_bit0()
    {
        _clint.Write(Clint.MsipOffset, 4, 0xFFFF_FFFE);
        Assert.Equal(0UL, _clint.Read(Clint.MsipOffset, 4));
        Assert.False(_harts[0][InterruptLine.MachineSoftware]);

        _clint.Write(Clint.MsipOffset, 4, 0xFFFF_FFFF);
        Assert.Equal(1UL, _clint.Read(Clint.MsipOffset, 4));
    }

    [Fact]
    public void Msip_of_a_hart_that_does_not_exist_reads_zero_and_ignores_writes()
    {
        _clint.Write(Clint.MsipOffset + (4 * 3), 4, 1);
        Assert.Equal(0UL, _clint.Read(Clint.MsipOffset + (4 * 3), 4));
        Assert.All(_harts, h => Assert.Equal(0, h.Calls));
    }

    [Fact]
    public void Mtimecmp_64bit_access_goes_to_the_hart()
    {
        _clint.Write(Clint.MtimecmpOffset + (8 * 2), 8, 0x1122_3344_5566_7788);

        Assert.Equal(0x1122_3344_5566_7788UL, _harts[2].TimerCompare);
        Assert.Equal(ulong.MaxValue, _harts[0].TimerCompare);
        Assert.Equal(0x1122_3344_5566_7788UL, _clint.Read(Clint.MtimecmpOffset + 16, 8));
    }

    [Fact]
    public void Mtimecmp_32bit_halves_are_written_and_read_separately()
    {
        _harts[1].TimerCompare = 0;
        _clint.Write(Clint.MtimecmpOffset + 8, 4, 0xAABB_CCDD);
        Assert.Equal(0x0000_0000_AABB_CCDDUL, _harts[1].TimerCompare);

        _clint.Write(Clint.MtimecmpOffset + 8 + 4, 4, 0x0102_0304);
        Assert.Equal(0x0102_0304_AABB_CCDDUL, _harts[1].TimerCompare);

        _clint.Write(Clint.MtimecmpOffset + 8, 4, 0xFFFF_FFFF);
        Assert.Equal(0x0102_0304_FFFF_FFFFUL, _harts[1].TimerCompare);

        Assert.Equal(0xFFFF_FFFFUL, _clint.Read(Clint.MtimecmpOffset + 8, 4));
        Assert.Equal(0x0102_0304UL, _clint.Read(Clint.MtimecmpOffset + 12, 4));
        Assert.Equal(0x03UL, _clint.Read(Clint.MtimecmpOffset + 13, 1));
    }

    [Fact]
    public void Mtime_reads_the_machine_clock_and_writes_set_it()
    {
        _clint.Write(Clint.MtimeOffset, 8, 1_000_000_000);
        ulong read = _clint.Read(Clint.MtimeOffset, 8);

        Assert.InRange(read, 1_000_000_000UL, 1_000_000_000UL + (MachineClock.Frequency * 5));
        Assert.InRange(_clock.Now, read, read + (MachineClock.Frequency * 5));
    }

    [Fact]
    public void Mtime_high_half_write_keeps_the_low_half_running()
    {
        _clint.Write(Clint.MtimeOffset + 4, 4, 7);

        Assert.Equal(7UL, _clint.Read(Clint.MtimeOffset + 4, 4));
        Assert.Equal(7UL, _clock.Now >> 32);
    }

    [Fact]
    public void Mtime_advances()
    {
        ulong first = _clint.Read(Clint.MtimeOffset, 8);
        Thread.Sleep(5);
        Assert.True(_clint.Read(Clint.MtimeOffset, 8) > first);
    }

    [Fact]
    public void Unmapped_offsets_read_zero()
    {
        Assert.Equal(0UL, _clint.Read(0x3FFC, 4));
        Assert.Equal(0UL, _clint.Read(0xBFF0, 8));
        _clint.Write(0x3FFC, 4, 1);
        Assert.All(_harts, h => Assert.Equal(0, h.Calls));
    }

    [Fact]
    public void Restore_re_drives_msip()
    {
        _clint.Write(Clint.MsipOffset + 8, 4, 1);
        var saved = _clint.SaveState();

        var harts = FakeHart.Create(3);
        var other = new Clint(harts, new MachineClock());
        other.RestoreState(saved);

        Assert.True(harts[2][InterruptLine.MachineSoftware]);
        Assert.Equal(1UL, other.Read(Clint.MsipOffset + 8, 4));
    }
}
