using HostVM.Machine.Devices;

namespace HostVM.Machine.Tests.Devices;

public class PlicTests
{
    private readonly FakeHart[] _harts = FakeHart.Create(2);
    private readonly Plic _plic;

    public PlicTests()
    {
        _plic = new Plic(_harts);
    }

    private static ulong Priority(int source) => Plic.PriorityOffset + (ulong)(4 * source);

    private static ulong Enable(int context, int word = 0) => Plic.EnableOffset + (Plic.EnableStride * (ulong)context) + (ulong)(4 * word);

    private static ulong Threshold(int context) => Plic.ContextOffset + (Plic.ContextStride * (ulong)context);

    private static ulong Claim(int context) => Threshold(context) + Plic.ClaimCompleteRegister;

    private void EnableSources(int context, params int[] sources)
    {
        foreach (int source in sources)
        {
            ulong at = Enable(context, source / 32);
            _plic.Write(at, 4, _plic.Read(at, 4) | (1UL << (source % 32)));
            _plic.Write(Priority(source), 4, 1);
        }
    }

    [Fact]
    public void Priorities_have_three_bits_and_source_zero_is_not_writable()
    {
        _plic.Write(Priority(5), 4, 0xFF);
        _plic.Write(Priority(0), 4, 3);

        Assert.Equal(7UL, _plic.Read(Priority(5), 4));
        Assert.Equal(0UL, _plic.Read(Priority(0), 4));
        Assert.Equal(0UL, _plic.Read(Priority(96), 4));
    }

    [Fact]
    public void Enable_bit_of_source_zero_and_of_missing_sources_stay_clear()
    {
        _plic.Write(Enable(0, 0), 4, 0xFFFF_FFFF);
        _plic.Write(Enable(0, 2), 4, 0xFFFF_FFFF);
        _plic.Write(Enable(0, 3), 4, 0xFFFF_FFFF);

        Assert.Equal(0xFFFF_FFFEUL, _plic.Read(Enable(0, 0), 4));
        Assert.Equal(0xFFFF_FFFFUL, _plic.Read(Enable(0, 2), 4)); // sources 64..95
        Assert.Equal(0UL, _plic.Read(Enable(0, 3), 4));
    }

    [Fact]
    public void Smaller_source_count_masks_enable_bits()
    {
        var plic = new Plic(_harts, sourceCount: 40);
        plic.Write(Enable(0, 1), 4, 0xFFFF_FFFF);
        Assert.Equal(0xFFUL, plic.Read(Enable(0, 1), 4)); // sources 32..39
        Assert.Equal(40, plic.SourceCount);
    }

    [Fact]
    public void Raised_line_sets_pending_and_dropped_line_before_claim_withdraws_it()
    {
        _plic.SetIrq(10, true);
        Assert.Equal(1UL << 10, _plic.Read(Plic.PendingOffset, 4));

        _plic.SetIrq(40, true);
        Assert.Equal(1UL << 8, _plic.Read(Plic.PendingOffset + 4, 4));

        _plic.SetIrq(10, false);
        Assert.Equal(0UL, _plic.Read(Plic.PendingOffset, 4));
    }

    [Fact]
    public void Pending_bits_are_read_only()
    {
        _plic.Write(Plic.PendingOffset, 4, 0xFFFF_FFFF);
        Assert.Equal(0UL, _plic.Read(Plic.PendingOffset, 4));
    }

    [Fact]
    public void Claim_takes_highest_priority_then_lowest_id()
    {
        EnableSources(1, 3, 7, 9, 12);
        _plic.Write(Priority(3), 4, 2);
        _plic.Write(Priority(7), 4, 5);
        _plic.Write(Priority(9), 4, 5);
        _plic.Write(Priority(12), 4, 1);
        foreach (int source in new[] { 12, 9, 7, 3 })
        {
            _plic.SetIrq(source, true);
        }

        Assert.Equal(7UL, _plic.Read(Claim(1), 4));
        Assert.Equal(9UL, _plic.Read(Claim(1), 4));
        Assert.Equal(3UL, _plic.Read(Claim(1), 4));
        Assert.Equal(12UL, _plic.Read(Claim(1), 4));
        Assert.Equal(0UL, _plic.Read(Claim(1), 4));
    }

    [Fact]
    public void Claim_clears_pending_bit()
    {
        EnableSources(0, 10);
        _plic.SetIrq(10, true);

        Assert.Equal(10UL, _plic.Read(Claim(0), 4));
        Assert.Equal(0UL, _plic.Read(Plic.PendingOffset, 4));
    }

    [Fact]
    public void Threshold_hides_priorities_at_or_below_it()
    {
        EnableSources(1, 4);
        _plic.Write(Priority(4), 4, 3);
        _plic.Write(Threshold(1), 4, 3);
        _plic.SetIrq(4, true);

        Assert.False(_harts[0][InterruptLine.SupervisorExternal]);
        Assert.Equal(0UL, _plic.Read(Claim(1), 4));
        Assert.Equal(3UL, _plic.Read(Threshold(1), 4));

        _plic.Write(Threshold(1), 4, 2);
        Assert.True(_harts[0][InterruptLine.SupervisorExternal]);
        Assert.Equal(4UL, _plic.Read(Claim(1), 4));
    }

    [Fact]
    public void Priority_zero_never_interrupts()
    {
        EnableSources(0, 6);
        _plic.Write(Priority(6), 4, 0);
        _plic.SetIrq(6, true);

        Assert.False(_harts[0][InterruptLine.MachineExternal]);
        Assert.Equal(0UL, _plic.Read(Claim(0), 4));
    }

    [Fact]
    public void Disabled_source_is_not_claimable()
    {
        _plic.Write(Priority(6), 4, 1);
        _plic.SetIrq(6, true);

        Assert.Equal(0UL, _plic.Read(Claim(0), 4));
        Assert.Equal(1UL << 6, _plic.Read(Plic.PendingOffset, 4));
    }

    [Fact]
    public void Contexts_drive_m_and_s_external_lines_of_their_hart()
    {
        EnableSources(3, 10); // hart 1, S-mode
        _plic.SetIrq(10, true);

        Assert.True(_harts[1][InterruptLine.SupervisorExternal]);
        Assert.False(_harts[1][InterruptLine.MachineExternal]);
        Assert.False(_harts[0][InterruptLine.SupervisorExternal]);

        EnableSources(2, 10); // hart 1, M-mode
        Assert.True(_harts[1][InterruptLine.MachineExternal]);

        Assert.Equal(10UL, _plic.Read(Claim(2), 4));
        Assert.False(_harts[1][InterruptLine.MachineExternal]);
        Assert.False(_harts[1][InterruptLine.SupervisorExternal]); // claimed: in service for everyone
    }

    [Fact]
    public void Line_high_while_in_service_does_not_pend_until_completion()
    {
        EnableSources(1, 10);
        _plic.SetIrq(10, true);
        Assert.Equal(10UL, _plic.Read(Claim(1), 4));

        _plic.SetIrq(10, false);
        _plic.SetIrq(10, true);
        Assert.Equal(0UL, _plic.Read(Plic.PendingOffset, 4));
        Assert.False(_harts[0][InterruptLine.SupervisorExternal]);
        Assert.Equal(0UL, _plic.Read(Claim(1), 4));
    }

    [Fact]
    public void Complete_of_a_still_high_line_makes_it_pending_again()
    {
        EnableSources(1, 10);
        _plic.SetIrq(10, true);
        Assert.Equal(10UL, _plic.Read(Claim(1), 4));
        Assert.False(_harts[0][InterruptLine.SupervisorExternal]);

        _plic.Write(Claim(1), 4, 10);

        Assert.Equal(1UL << 10, _plic.Read(Plic.PendingOffset, 4));
        Assert.True(_harts[0][InterruptLine.SupervisorExternal]);
        Assert.Equal(10UL, _plic.Read(Claim(1), 4));
    }

    [Fact]
    public void Complete_of_a_lowered_line_leaves_it_idle()
    {
        EnableSources(1, 10);
        _plic.SetIrq(10, true);
        Assert.Equal(10UL, _plic.Read(Claim(1), 4));
        _plic.SetIrq(10, false);

        _plic.Write(Claim(1), 4, 10);

        Assert.Equal(0UL, _plic.Read(Plic.PendingOffset, 4));
        Assert.False(_harts[0][InterruptLine.SupervisorExternal]);

        _plic.SetIrq(10, true); // the gateway accepts a new request after completion
        Assert.True(_harts[0][InterruptLine.SupervisorExternal]);
    }

    [Fact]
    public void Complete_for_a_source_the_context_does_not_enable_is_ignored()
    {
        EnableSources(1, 10);
        _plic.SetIrq(10, true);
        Assert.Equal(10UL, _plic.Read(Claim(1), 4));

        _plic.Write(Claim(0), 4, 10); // context 0 does not enable 10
        Assert.Equal(0UL, _plic.Read(Plic.PendingOffset, 4));

        _plic.Write(Enable(1), 4, 0); // masked now: completion ignored too
        _plic.Write(Claim(1), 4, 10);
        Assert.Equal(0UL, _plic.Read(Plic.PendingOffset, 4));

        _plic.Write(Enable(1), 4, 1UL << 10);
        _plic.Write(Claim(1), 4, 10);
        Assert.Equal(1UL << 10, _plic.Read(Plic.PendingOffset, 4));
    }

    [Fact]
    public void Lines_are_driven_only_on_change()
    {
        EnableSources(0, 1, 2);
        int before = _harts[0].Calls;
        _plic.SetIrq(1, true);
        _plic.SetIrq(2, true);
        _plic.SetIrq(2, true);

        Assert.Equal(before + 1, _harts[0].Calls);
    }

    [Fact]
    public void Hostile_offsets_and_ids_are_harmless()
    {
        _plic.SetIrq(0, true);
        _plic.SetIrq(96, true);
        _plic.SetIrq(-5, true);
        _plic.Write(Claim(0), 4, 0xFFFF_FFFF);
        _plic.Write(Claim(4), 4, 1); // context 4 does not exist with 2 harts
        _plic.Write(Plic.Size - 4, 4, 1);
        _plic.Write(Threshold(0) + 2, 2, 0xFFFF);

        Assert.Equal(0UL, _plic.Read(Claim(4), 4));
        Assert.Equal(0UL, _plic.Read(Threshold(0) + 8, 4));
        Assert.Equal(0UL, _plic.Read(Plic.Size - 4, 4));
        Assert.Equal(0UL, _plic.Read(Plic.PendingOffset, 8));
        Assert.Equal(0UL, _plic.Read(Threshold(0), 4));
    }

    [Fact]
    public void Eight_byte_access_is_two_words()
    {
        _plic.Write(Priority(2), 8, 0x0000_0005_0000_0003);
        Assert.Equal(3UL, _plic.Read(Priority(2), 4));
        Assert.Equal(5UL, _plic.Read(Priority(3), 4));
        Assert.Equal(0x0000_0005_0000_0003UL, _plic.Read(Priority(2), 8));
    }

    [Fact]
    public void Restore_brings_back_pending_and_lines()
    {
        EnableSources(1, 10);
        _plic.SetIrq(10, true);
        var saved = _plic.SaveState();

        var harts = FakeHart.Create(2);
        var other = new Plic(harts);
        other.RestoreState(saved);

        Assert.True(harts[0][InterruptLine.SupervisorExternal]);
        Assert.Equal(10UL, other.Read(Claim(1), 4));
        Assert.Throws<ArgumentException>(() => new Plic(FakeHart.Create(1)).RestoreState(saved));
    }
}
