using HostVM.Machine.Cpu;
using HostVM.Machine.Devices;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Interrupts (privileged spec, "Machine Interrupt Registers" and "Machine Trap Vector"): when a
/// pending interrupt is taken (mie, mstatus.MIE/SIE, privilege, mideleg), the fixed priority order
/// MEI, MSI, MTI, SEI, SSI, STI, vectored entry at base + 4 * cause, and WFI wake-up.
/// </summary>
public class InterruptTests
{
    private const ulong Base = TestHart.ProgramBase;
    private const ulong InterruptBit = 1UL << 63;

    [Fact]
    public void Machine_software_interrupt_is_taken_once_mstatus_mie_is_set()
    {
        using var h = new TestHart();
        h.Write(Base,
            Asm.Nop,
            Asm.Csrrsi(0, Csr.Mstatus, 8),      // set MIE
            Asm.Nop,
            Asm.Halt);
        h.WriteCsr(Csr.Mie, Csr.Msi);
        h.WriteCsr(Csr.Mtval, 0x5555);
        h.Hart.SetInterruptLine(InterruptLine.MachineSoftware, true);
        h.Run(20);

        h.AssertTrappedToM(InterruptBit | 3, 0, Base + 8);
        ulong mstatus = h.Mstatus;
        Assert.Equal(Csr.StatusMpie, mstatus & (Csr.StatusMie | Csr.StatusMpie));
        Assert.Equal(3UL, (mstatus >> Csr.StatusMppShift) & 3);
        Assert.NotEqual(0UL, h.ReadCsr(Csr.Mip) & Csr.Msi);
    }

    [Fact]
    public void Machine_interrupt_waits_in_m_mode_while_mie_is_clear()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Nop, Asm.Nop, Asm.Halt);
        h.WriteCsr(Csr.Mie, Csr.Msi);
        h.Hart.SetInterruptLine(InterruptLine.MachineSoftware, true);
        h.Run(50);

        h.AssertHaltedAt(Base + 8);
    }

    [Fact]
    public void Machine_interrupt_waits_while_its_mie_bit_is_clear()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Nop, Asm.Halt);
        h.WriteCsr(Csr.Mie, Csr.Mti);
        h.SetMstatus(Csr.StatusMie);
        h.Hart.SetInterruptLine(InterruptLine.MachineSoftware, true);
        h.Run(50);

        h.AssertHaltedAt(Base + 4);
    }

    [Theory]
    [InlineData(PrivilegeMode.Supervisor)]
    [InlineData(PrivilegeMode.User)]
    public void Machine_interrupt_is_taken_below_m_even_with_mie_clear(PrivilegeMode mode)
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Halt);
        h.WriteCsr(Csr.Mie, Csr.Mei);
        h.Hart.SetInterruptLine(InterruptLine.MachineExternal, true);
        h.StartIn(mode, Base);
        h.Run(20);

        h.AssertTrappedToM(InterruptBit | 11, 0, Base);
        Assert.Equal((ulong)mode, (h.Mstatus >> Csr.StatusMppShift) & 3);
    }

    public static TheoryData<string, ulong> PriorityCases => new()
    {
        // pending (and enabled, not delegated) set -> cause taken first
        { "MEI MSI MTI SEI SSI STI", 11 },
        { "MSI MTI SEI SSI STI", 3 },
        { "MTI SEI SSI STI", 7 },
        { "SEI SSI STI", 9 },
        { "SSI STI", 1 },
        { "STI", 5 },
        { "MEI STI", 11 },
        { "MTI MSI", 3 },
        { "SEI MTI", 7 },
        { "STI SEI", 9 },
    };

    [Theory]
    [MemberData(nameof(PriorityCases))]
    public void Simultaneous_interrupts_are_taken_in_the_fixed_priority_order(string pending, ulong expectedCause)
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Halt);
        foreach (string name in pending.Split(' '))
        {
            switch (name)
            {
                case "MTI": h.Hart.TimerCompare = 0; break; // mtime >= mtimecmp
                case "MEI": h.Hart.SetInterruptLine(InterruptLine.MachineExternal, true); break;
                case "MSI": h.Hart.SetInterruptLine(InterruptLine.MachineSoftware, true); break;
                case "SEI": h.Hart.SetInterruptLine(InterruptLine.SupervisorExternal, true); break;
                case "SSI": h.WriteCsr(Csr.Mip, h.ReadCsr(Csr.Mip) | Csr.Ssi); break;
                case "STI": h.WriteCsr(Csr.Mip, h.ReadCsr(Csr.Mip) | Csr.Sti); break;
            }
        }

        h.WriteCsr(Csr.Mie, Csr.AllInterrupts);
        h.SetMstatus(Csr.StatusMie);
        h.Run(20);

        h.AssertTrappedToM(InterruptBit | expectedCause, 0, Base);
    }

    [Theory]
    [InlineData(InterruptLine.MachineSoftware, 3)]
    [InlineData(InterruptLine.MachineExternal, 11)]
    [InlineData(InterruptLine.SupervisorExternal, 9)]
    public void Vectored_mtvec_sends_interrupts_to_base_plus_four_times_cause(InterruptLine line, int cause)
    {
        using var h = new TestHart();
        const ulong vector = Base + 0x400;
        for (int i = 0; i < 16; i++)
        {
            h.Write(vector + (ulong)(4 * i), Asm.Halt);
        }

        h.Write(Base, Asm.Halt);
        h.WriteCsr(Csr.Mtvec, vector | 1);
        h.WriteCsr(Csr.Mie, Csr.AllInterrupts);
        h.SetMstatus(Csr.StatusMie);
        h.Hart.SetInterruptLine(line, true);
        h.Run(20);

        h.AssertHaltedAt(vector + (ulong)(4 * cause));
        Assert.Equal(InterruptBit | (uint)cause, h.Mcause);
    }

    [Fact]
    public void Vectored_mtvec_timer_interrupt_lands_at_base_plus_28()
    {
        using var h = new TestHart();
        const ulong vector = Base + 0x400;
        for (int i = 0; i < 16; i++)
        {
            h.Write(vector + (ulong)(4 * i), Asm.Halt);
        }

        h.Write(Base, Asm.Halt);
        h.WriteCsr(Csr.Mtvec, vector | 1);
        h.WriteCsr(Csr.Mie, Csr.Mti);
        h.SetMstatus(Csr.StatusMie);
        h.Hart.TimerCompare = h.Clock.Now;
        h.Run(20);

        h.AssertHaltedAt(vector + 28);
        Assert.Equal(InterruptBit | 7, h.Mcause);
    }

    [Fact]
    public void Delegated_supervisor_interrupt_is_not_taken_in_m_mode()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Nop, Asm.Halt);
        h.WriteCsr(Csr.Mideleg, Csr.Ssi);
        h.WriteCsr(Csr.Mie, Csr.Ssi);
        h.WriteCsr(Csr.Mip, Csr.Ssi);
        h.SetMstatus(Csr.StatusMie | Csr.StatusSie);
        h.Run(50);

        h.AssertHaltedAt(Base + 4);
    }

    [Fact]
    public void Delegated_supervisor_interrupt_is_taken_in_s_mode_when_sie_is_set()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Halt);
        h.WriteCsr(Csr.Mideleg, Csr.Ssi);
        h.WriteCsr(Csr.Mie, Csr.Ssi);
        h.WriteCsr(Csr.Mip, Csr.Ssi);
        h.WriteCsr(Csr.Mcause, 0x77);
        h.SetMstatus(Csr.StatusSie);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertHaltedAt(TestHart.STrapHalt);
        Assert.Equal(PrivilegeMode.Supervisor, h.Privilege);
        Assert.Equal(InterruptBit | 1, h.ReadCsr(Csr.Scause));
        Assert.Equal(Base, h.ReadCsr(Csr.Sepc));
        ulong sstatus = h.ReadCsr(Csr.Sstatus);
        Assert.Equal(Csr.StatusSpp | Csr.StatusSpie, sstatus & (Csr.StatusSpp | Csr.StatusSpie | Csr.StatusSie));
        Assert.Equal(0x77UL, h.Mcause);
    }

    [Fact]
    public void Delegated_supervisor_interrupt_waits_in_s_mode_while_sie_is_clear()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Nop, Asm.Halt);
        h.WriteCsr(Csr.Mideleg, Csr.Sti);
        h.WriteCsr(Csr.Mie, Csr.Sti);
        h.WriteCsr(Csr.Mip, Csr.Sti);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(50);

        h.AssertHaltedAt(Base + 4);
        Assert.Equal(PrivilegeMode.Supervisor, h.Privilege);
    }

    [Fact]
    public void Delegated_supervisor_interrupt_is_taken_in_u_mode_whatever_sie()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Halt);
        h.WriteCsr(Csr.Mideleg, Csr.Sei);
        h.WriteCsr(Csr.Mie, Csr.Sei);
        h.Hart.SetInterruptLine(InterruptLine.SupervisorExternal, true);
        h.StartIn(PrivilegeMode.User, Base);
        h.Run(20);

        h.AssertHaltedAt(TestHart.STrapHalt);
        Assert.Equal(InterruptBit | 9, h.ReadCsr(Csr.Scause));
        Assert.Equal(0UL, h.ReadCsr(Csr.Sstatus) & Csr.StatusSpp);
    }

    [Fact]
    public void Vectored_stvec_sends_a_delegated_interrupt_to_base_plus_four_times_cause()
    {
        using var h = new TestHart();
        const ulong vector = Base + 0x400;
        for (int i = 0; i < 16; i++)
        {
            h.Write(vector + (ulong)(4 * i), Asm.Halt);
        }

        h.Write(Base, Asm.Halt);
        h.WriteCsr(Csr.Stvec, vector | 1);
        h.WriteCsr(Csr.Mideleg, Csr.Sti);
        h.WriteCsr(Csr.Mie, Csr.Sti);
        h.WriteCsr(Csr.Mip, Csr.Sti);
        h.StartIn(PrivilegeMode.User, Base);
        h.Run(20);

        h.AssertHaltedAt(vector + 20);
    }

    [Fact]
    public void Undelegated_supervisor_interrupt_goes_to_m_even_from_s()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Halt);
        h.WriteCsr(Csr.Mie, Csr.Ssi);
        h.WriteCsr(Csr.Mip, Csr.Ssi);
        h.SetMstatus(Csr.StatusSie);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertTrappedToM(InterruptBit | 1, 0, Base);
    }

    [Fact]
    public void Clint_msip_and_mtimecmp_writes_from_the_guest_interrupt_the_hart()
    {
        using var h = new TestHart();
        var clint = new Clint([h.Hart], h.Clock);
        h.Bus.Map(Clint.DefaultBase, Clint.Size, clint);
        const ulong second = Base + 0x100;
        h.Write(Base,
            Asm.Sw(5, 10, 0),           // msip[0] = 1
            Asm.Halt);
        h.Write(second,
            Asm.Sw(0, 10, 0),           // msip[0] = 0
            Asm.Sd(0, 11, 0),           // mtimecmp[0] = 0: the timer fires
            Asm.Csrrsi(0, Csr.Mstatus, 8),
            Asm.Halt);
        h.WriteCsr(Csr.Mie, Csr.Msi | Csr.Mti);
        h.SetMstatus(Csr.StatusMie);
        h.SetX(5, 1);
        h.SetX(10, Clint.DefaultBase);
        h.SetX(11, Clint.DefaultBase + Clint.MtimecmpOffset);
        h.Run(20);
        h.AssertTrappedToM(InterruptBit | 3, 0, Base + 4);

        h.Hart.Pc = second; // MIE is 0 now: the code turns it back on
        h.Run(20);
        h.AssertTrappedToM(InterruptBit | 7, 0, second + 12);
        Assert.Equal(0UL, h.ReadCsr(Csr.Mip) & Csr.Msi);
    }

    [Fact]
    public void Wfi_with_a_locally_enabled_pending_interrupt_falls_through_when_globally_disabled()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Wfi(), Asm.Addi(5, 5, 1), Asm.Halt);
        h.WriteCsr(Csr.Mie, Csr.Msi);
        h.Hart.SetInterruptLine(InterruptLine.MachineSoftware, true);
        RunWithWatchdog(h, 20);

        h.AssertHaltedAt(Base + 8);
        Assert.Equal(1UL, h.X(5));
    }

    [Fact]
    public void Wfi_sleeps_until_another_thread_raises_an_interrupt()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Wfi(), Asm.Halt);
        h.WriteCsr(Csr.Mie, Csr.Mei);
        h.SetMstatus(Csr.StatusMie);
        var hart = new Thread(() => h.Run(20));
        hart.Start();
        Thread.Sleep(50);
        h.Hart.SetInterruptLine(InterruptLine.MachineExternal, true);

        Assert.True(hart.Join(TimeSpan.FromSeconds(10)), "WFI did not wake up");
        h.AssertTrappedToM(InterruptBit | 11, 0, Base + 4);
    }

    [Fact]
    public void Seip_reads_as_the_or_of_the_software_bit_and_the_external_line()
    {
        // Privileged spec, mip: "the value of SEIP read by CSRR is the logical-OR of the
        // software-writable bit and the interrupt signal from the interrupt controller", and
        // CSRRS/CSRRC do not use the external signal to compute the value they write.
        using var h = new TestHart();
        h.Write(Base,
            Asm.Csrrc(0, Csr.Mip, 5),           // software bit = 0 while the line is high
            Asm.Csrr(3, Csr.Mip),               // still pending: the line
            Asm.Csrrs(0, Csr.Mip, 5),           // software bit = 1
            Asm.Halt);
        h.SetX(5, Csr.Sei);
        h.Hart.SetInterruptLine(InterruptLine.SupervisorExternal, true);
        h.Run(20);
        h.AssertHaltedAt(Base + 12);
        Assert.Equal(Csr.Sei, h.X(3) & Csr.Sei);

        h.Hart.SetInterruptLine(InterruptLine.SupervisorExternal, false);
        Assert.Equal(Csr.Sei, h.ReadCsr(Csr.Mip) & Csr.Sei); // the software bit holds it
    }

    private static void RunWithWatchdog(TestHart h, ulong budget)
    {
        using var watchdog = new Timer(_ => h.Hart.RequestStop(), null, TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan);
        h.Run(budget);
    }
}
