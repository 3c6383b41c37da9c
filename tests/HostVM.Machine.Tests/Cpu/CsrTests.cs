using HostVM.Machine.Cpu;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Zicsr and the CSR file: the six CSR instructions and when they read or write (unprivileged spec,
/// "Zicsr"), access rules from the CSR number (bits 11:10 read-only, 9:8 lowest privilege), the
/// WARL fields of satp, misa, mstatus, mepc, and the counters with their enables.
/// </summary>
public class CsrTests
{
    private const ulong Base = TestHart.ProgramBase;

    [Fact]
    public void Csrrw_csrrs_csrrc_return_the_old_value_and_write_the_new()
    {
        using var h = new TestHart();
        h.Write(Base,
            Asm.Csrrw(3, Csr.Mscratch, 5),      // x3 = 0x1234, mscratch = x5
            Asm.Csrrs(4, Csr.Mscratch, 6),      // x4 = x5,    mscratch |= x6
            Asm.Csrrc(7, Csr.Mscratch, 8),      // x7 = x5|x6, mscratch &= ~x8
            Asm.Csrr(9, Csr.Mscratch),
            Asm.Halt);
        h.WriteCsr(Csr.Mscratch, 0x1234);
        h.SetX(5, 0xF0F0_0000_0000_00F0);
        h.SetX(6, 0x0000_0000_0000_000F);
        h.SetX(8, 0xF000_0000_0000_0003);
        h.Run(20);

        h.AssertHaltedAt(Base + 16);
        Assert.Equal(0x1234UL, h.X(3));
        Assert.Equal(0xF0F0_0000_0000_00F0UL, h.X(4));
        Assert.Equal(0xF0F0_0000_0000_00FFUL, h.X(7));
        Assert.Equal(0x00F0_0000_0000_00FCUL, h.X(9));
    }

    [Fact]
    public void Immediate_forms_zero_extend_a_5_bit_value()
    {
        using var h = new TestHart();
        h.Write(Base,
            Asm.Csrrwi(3, Csr.Mscratch, 31),    // mscratch = 31
            Asm.Csrrsi(4, Csr.Mscratch, 0),     // no write; x4 = 31
            Asm.Csrrci(5, Csr.Mscratch, 0x15),  // x5 = 31, mscratch = 31 & ~0x15 = 0x0A
            Asm.Csrrsi(6, Csr.Mscratch, 0x10),  // x6 = 0x0A, mscratch = 0x1A
            Asm.Csrr(7, Csr.Mscratch),
            Asm.Halt);
        h.WriteCsr(Csr.Mscratch, ulong.MaxValue);
        h.Run(20);

        h.AssertHaltedAt(Base + 20);
        Assert.Equal(ulong.MaxValue, h.X(3));
        Assert.Equal(31UL, h.X(4));
        Assert.Equal(31UL, h.X(5));
        Assert.Equal(0x0AUL, h.X(6));
        Assert.Equal(0x1AUL, h.X(7));
    }

    [Fact]
    public void Csrrw_with_rd_x0_still_writes()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Csrrw(0, Csr.Mscratch, 5), Asm.Halt);
        h.SetX(5, 77);
        h.Run(10);

        h.AssertHaltedAt(Base + 4);
        Assert.Equal(77UL, h.ReadCsr(Csr.Mscratch));
    }

    public static TheoryData<string, uint> ReadsOfReadOnlyCsrs => new()
    {
        { "csrrs x3, mvendorid, x0", Asm.Csrrs(3, Csr.Mvendorid, 0) },
        { "csrrc x3, mhartid, x0", Asm.Csrrc(3, Csr.Mhartid, 0) },
        { "csrrsi x3, cycle, 0", Asm.Csrrsi(3, Csr.Cycle, 0) },
        { "csrrci x3, instret, 0", Asm.Csrrci(3, Csr.Instret, 0) },
        { "csrrs x0, marchid, x0", Asm.Csrrs(0, Csr.Marchid, 0) },
    };

    [Theory]
    [MemberData(nameof(ReadsOfReadOnlyCsrs))]
    public void Set_or_clear_with_x0_or_zero_immediate_does_not_write_so_read_only_csrs_allow_it(string name, uint instruction)
    {
        using var h = new TestHart();
        h.Write(Base, instruction, Asm.Halt);
        h.Run(10);

        Assert.True(h.Pc == Base + 4, $"{name} trapped: mcause {h.Mcause}");
    }

    public static TheoryData<string, uint> WritesToReadOnlyCsrs => new()
    {
        { "csrrw x0, mhartid, x5", Asm.Csrrw(0, Csr.Mhartid, 5) },
        { "csrrw x0, mvendorid, x0", Asm.Csrrw(0, Csr.Mvendorid, 0) },   // csrrw always writes
        { "csrrs x3, mimpid, x5 (x5 = 0)", Asm.Csrrs(3, Csr.Mimpid, 5) }, // rs1 is not x0: a write
        { "csrrc x3, cycle, x5 (x5 = 0)", Asm.Csrrc(3, Csr.Cycle, 5) },
        { "csrrwi x3, time, 0", Asm.Csrrwi(3, Csr.Time, 0) },
        { "csrrsi x3, instret, 1", Asm.Csrrsi(3, Csr.Instret, 1) },
    };

    [Theory]
    [MemberData(nameof(WritesToReadOnlyCsrs))]
    public void Writing_a_read_only_csr_is_illegal_with_the_instruction_in_mtval(string name, uint instruction)
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Nop, instruction, Asm.Halt);
        h.SetX(3, 0x3333);
        h.SetX(5, 0);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.IllegalInstruction, instruction, Base + 4);
        Assert.True(h.X(3) == 0x3333, $"{name}: rd written by a trapping instruction");
    }

    [Theory]
    [InlineData(0x200)]   // vsstatus: no H extension
    [InlineData(0x3A1)]   // pmpcfg1 does not exist on RV64
    [InlineData(0x7FF)]
    [InlineData(0x5FF)]
    [InlineData(0xFFF)]
    public void Unknown_csr_is_illegal(int csr)
    {
        using var h = new TestHart();
        uint instruction = Asm.Csrr(3, csr);
        h.Write(Base, instruction, Asm.Halt);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.IllegalInstruction, instruction, Base);
    }

    [Theory]
    [InlineData(PrivilegeMode.Supervisor, Csr.Mstatus)]
    [InlineData(PrivilegeMode.Supervisor, Csr.Mscratch)]
    [InlineData(PrivilegeMode.Supervisor, Csr.Mhartid)]
    [InlineData(PrivilegeMode.Supervisor, Csr.Mcycle)]
    [InlineData(PrivilegeMode.User, Csr.Sstatus)]
    [InlineData(PrivilegeMode.User, Csr.Sscratch)]
    [InlineData(PrivilegeMode.User, Csr.Mepc)]
    public void Accessing_a_more_privileged_csr_is_illegal(PrivilegeMode mode, int csr)
    {
        using var h = new TestHart();
        uint instruction = Asm.Csrr(3, csr);
        h.Write(Base, Asm.Nop, instruction, Asm.Halt);
        h.StartIn(mode, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.IllegalInstruction, instruction, Base + 4);
        Assert.Equal((ulong)mode, (h.Mstatus >> Csr.StatusMppShift) & 3);
    }

    [Fact]
    public void Supervisor_reads_and_writes_its_own_csrs()
    {
        using var h = new TestHart();
        h.Write(Base,
            Asm.Csrw(Csr.Sscratch, 5),
            Asm.Csrr(3, Csr.Sscratch),
            Asm.Csrr(4, Csr.Sstatus),
            Asm.Halt);
        h.SetX(5, 0xABCD);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertHaltedAt(Base + 12);
        Assert.Equal(PrivilegeMode.Supervisor, h.Privilege);
        Assert.Equal(0xABCDUL, h.X(3));
    }

    [Fact]
    public void Sstatus_is_a_restricted_view_of_mstatus()
    {
        using var h = new TestHart();
        h.Write(Base,
            Asm.Csrw(Csr.Sstatus, 5),           // try to set SIE, SPP, SUM, and MIE, MPP, TVM
            Asm.Csrr(3, Csr.Sstatus),
            Asm.Csrr(4, Csr.Mstatus),
            Asm.Halt);
        h.SetX(5, Csr.StatusSie | Csr.StatusSpp | Csr.StatusSum | Csr.StatusMie | Csr.StatusMpp | Csr.StatusTvm);
        h.Run(10);

        h.AssertHaltedAt(Base + 12);
        ulong sBits = Csr.StatusSie | Csr.StatusSpp | Csr.StatusSum;
        Assert.Equal(sBits, h.X(3) & (sBits | Csr.StatusMie | Csr.StatusMpp | Csr.StatusTvm));
        Assert.Equal(sBits, h.X(4) & (sBits | Csr.StatusMie | Csr.StatusMpp | Csr.StatusTvm));
    }

    [Fact]
    public void Mstatus_reports_64_bit_uxl_and_sxl()
    {
        using var h = new TestHart();
        ulong mstatus = h.Mstatus;
        Assert.Equal(2UL, (mstatus >> 32) & 3); // UXL
        Assert.Equal(2UL, (mstatus >> 34) & 3); // SXL
        Assert.Equal(2UL, (h.ReadCsr(Csr.Sstatus) >> 32) & 3);
    }

    [Fact]
    public void Misa_reports_rv64_acdfimsu()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Csrr(3, Csr.Misa), Asm.Halt);
        h.Run(10);

        const ulong rv64 = 2UL << 62;
        ulong extensions = 0;
        foreach (char c in "ACDFIMSU")
        {
            extensions |= 1UL << (c - 'A');
        }

        Assert.Equal(rv64 | extensions, h.X(3));
    }

    [Fact]
    public void Mhartid_is_the_hart_number()
    {
        using var h = new TestHart();
        using var other = new Hart(3, h.Bus, h.Code, h.Clock);
        Assert.True(other.TryReadCsr(Csr.Mhartid, out ulong id));
        Assert.Equal(3UL, id);
        Assert.Equal(0UL, h.ReadCsr(Csr.Mhartid));
    }

    [Fact]
    public void Mepc_and_sepc_bit_0_reads_zero()
    {
        using var h = new TestHart();
        h.Write(Base,
            Asm.Csrw(Csr.Mepc, 5),
            Asm.Csrr(3, Csr.Mepc),
            Asm.Csrw(Csr.Sepc, 5),
            Asm.Csrr(4, Csr.Sepc),
            Asm.Halt);
        h.SetX(5, 0x8000_1235);
        h.Run(10);

        h.AssertHaltedAt(Base + 16);
        Assert.Equal(0x8000_1234UL, h.X(3));
        Assert.Equal(0x8000_1234UL, h.X(4));
    }

    [Theory]
    [InlineData(8UL)]
    [InlineData(9UL)]
    [InlineData(10UL)]
    public void Satp_accepts_sv39_sv48_sv57(ulong mode)
    {
        using var h = new TestHart();
        ulong value = (mode << 60) | 0x8_0123;
        h.Write(Base, Asm.Csrw(Csr.Satp, 5), Asm.Csrr(3, Csr.Satp), Asm.Halt);
        h.SetX(5, value);
        h.Run(10);

        h.AssertHaltedAt(Base + 8);
        Assert.Equal(value, h.X(3));
    }

    [Theory]
    [InlineData(1UL)]    // Sv32: RV32 only
    [InlineData(11UL)]   // Sv64: not defined
    [InlineData(15UL)]
    [InlineData(4UL)]
    public void Satp_write_with_an_unsupported_mode_has_no_effect(ulong mode)
    {
        using var h = new TestHart();
        ulong before = (8UL << 60) | 0x8_0456;
        h.WriteCsr(Csr.Satp, before);
        h.Write(Base, Asm.Csrw(Csr.Satp, 5), Asm.Csrr(3, Csr.Satp), Asm.Halt);
        h.SetX(5, (mode << 60) | 0x8_0123);
        h.Run(10);

        h.AssertHaltedAt(Base + 8);
        Assert.Equal(before, h.X(3));
    }

    [Fact]
    public void Instret_counts_every_retired_instruction()
    {
        using var h = new TestHart();
        h.Write(Base,
            Asm.Csrr(3, Csr.Instret),
            Asm.Nop, Asm.Nop, Asm.Nop,
            Asm.Csrr(4, Csr.Instret),
            Asm.Csrr(5, Csr.Minstret),
            Asm.Halt);
        h.Run(20);

        h.AssertHaltedAt(Base + 24);
        Assert.Equal(4UL, h.X(4) - h.X(3)); // the first csrr and three nops retired in between
        Assert.Equal(1UL, h.X(5) - h.X(4));
    }

    [Fact]
    public void Cycle_advances_and_time_follows_the_machine_clock()
    {
        using var h = new TestHart();
        h.Write(Base,
            Asm.Csrr(3, Csr.Cycle),
            Asm.Csrr(5, Csr.Time),
            Asm.Nop, Asm.Nop,
            Asm.Csrr(4, Csr.Cycle),
            Asm.Csrr(6, Csr.Time),
            Asm.Halt);
        ulong before = h.Clock.Now;
        h.Run(20);
        ulong after = h.Clock.Now;

        h.AssertHaltedAt(Base + 24);
        Assert.True(h.X(4) > h.X(3));
        Assert.InRange(h.X(5), before, after);
        Assert.InRange(h.X(6), h.X(5), after);
    }

    public static TheoryData<int, int, ulong, ulong, bool> CounterEnableCases => new()
    {
        // counter CSR, privilege (1 = S, 0 = U), mcounteren, scounteren, allowed
        { Csr.Cycle, 1, 0, 0, false },
        { Csr.Cycle, 1, 1, 0, true },
        { Csr.Time, 1, 0b101, 0, false },
        { Csr.Time, 1, 0b010, 0, true },
        { Csr.Instret, 1, 0b011, 0b100, false },
        { Csr.Instret, 1, 0b100, 0, true },
        { Csr.Cycle, 0, 1, 0, false },      // U needs both
        { Csr.Cycle, 0, 0, 1, false },
        { Csr.Cycle, 0, 1, 1, true },
        { Csr.Time, 0, 0b010, 0b010, true },
        { Csr.Time, 0, 0b010, 0b101, false },
        { Csr.Instret, 0, 0b100, 0b100, true },
        { Csr.Instret, 0, 0b011, 0b111, false },
    };

    [Theory]
    [MemberData(nameof(CounterEnableCases))]
    public void Counter_access_below_m_needs_mcounteren_and_for_u_also_scounteren(int csr, int privilege, ulong mcounteren, ulong scounteren, bool allowed)
    {
        using var h = new TestHart();
        uint instruction = Asm.Csrr(3, csr);
        h.Write(Base, instruction, Asm.Halt);
        h.WriteCsr(Csr.Mcounteren, mcounteren);
        h.WriteCsr(Csr.Scounteren, scounteren);
        h.StartIn((PrivilegeMode)privilege, Base);
        h.Run(10);

        if (allowed)
        {
            h.AssertHaltedAt(Base + 4);
        }
        else
        {
            h.AssertTrappedToM(TrapCause.IllegalInstruction, instruction, Base);
        }
    }

    [Fact]
    public void Sie_and_sip_show_only_delegated_interrupts()
    {
        using var h = new TestHart();
        h.WriteCsr(Csr.Mie, Csr.Ssi | Csr.Sti | Csr.Msi);
        h.WriteCsr(Csr.Mideleg, Csr.Ssi);
        h.WriteCsr(Csr.Mip, Csr.Ssi | Csr.Sti);

        Assert.Equal(Csr.Ssi, h.ReadCsr(Csr.Sie));
        Assert.Equal(Csr.Ssi, h.ReadCsr(Csr.Sip));

        h.Write(Base, Asm.Csrw(Csr.Sie, 5), Asm.Halt);
        h.SetX(5, Csr.Sei | Csr.Ssi | Csr.Sti);
        h.WriteCsr(Csr.Mie, 0);
        h.Run(10);

        Assert.Equal(Csr.Ssi, h.ReadCsr(Csr.Mie)); // sie can only set delegated bits
    }

    [Fact]
    public void Mip_msip_mtip_meip_are_not_writable_by_csr_instructions()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Csrrs(0, Csr.Mip, 5), Asm.Csrr(3, Csr.Mip), Asm.Halt);
        h.SetX(5, Csr.Msi | Csr.Mti | Csr.Mei | Csr.Ssi);
        h.Run(10);

        h.AssertHaltedAt(Base + 8);
        Assert.Equal(Csr.Ssi, h.X(3));
    }

    [Fact]
    public void Mstatus_mpp_never_holds_the_reserved_value_2()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Csrw(Csr.Mstatus, 5), Asm.Csrr(3, Csr.Mstatus), Asm.Halt);
        h.SetX(5, 2UL << Csr.StatusMppShift);
        h.Run(10);

        h.AssertHaltedAt(Base + 8);
        Assert.NotEqual(2UL, (h.X(3) >> Csr.StatusMppShift) & 3);
    }

    [Fact]
    public void Mcountinhibit_is_hardwired_to_zero_and_the_counters_keep_counting()
    {
        // Privileged spec: mcountinhibit is WARL and may be hardwired to zero; HostVM does that,
        // so writing IR/CY must read back 0 and minstret must still advance.
        using var h = new TestHart();
        h.Write(Base,
            Asm.Csrw(Csr.Mcountinhibit, 5),
            Asm.Csrr(6, Csr.Mcountinhibit),
            Asm.Csrr(3, Csr.Minstret),
            Asm.Nop, Asm.Nop,
            Asm.Csrr(4, Csr.Minstret),
            Asm.Halt);
        h.SetX(5, 0b101); // IR and CY
        h.Run(20);

        h.AssertHaltedAt(Base + 24);
        Assert.Equal(0UL, h.X(6));
        Assert.Equal(h.X(3) + 3, h.X(4));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Supervisor_sets_ssip_through_sip_only_when_delegated(bool delegated)
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Csrrsi(0, Csr.Sip, 2), Asm.Halt);
        h.WriteCsr(Csr.Mideleg, delegated ? Csr.Ssi : 0);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertHaltedAt(Base + 4);
        Assert.Equal(delegated ? Csr.Ssi : 0, h.ReadCsr(Csr.Mip) & Csr.Ssi);
    }

    [Theory]
    [InlineData("ecall")]
    [InlineData("ebreak")]
    [InlineData("faulting load")]
    public void An_instruction_that_traps_does_not_retire(string what)
    {
        // Privileged spec: ECALL and EBREAK "are not considered to retire, and should not
        // increment the minstret CSR"; neither does an instruction that raises an exception.
        using var h = new TestHart();
        const ulong handler = Base + 0x200;
        uint trapping = what switch
        {
            "ecall" => Asm.Ecall(),
            "ebreak" => Asm.Ebreak(),
            _ => Asm.Ld(5, 0, 0),           // address 0: nothing there
        };
        h.Write(Base, Asm.Csrr(3, Csr.Minstret), trapping, Asm.Halt);
        h.Write(handler, Asm.Csrr(4, Csr.Minstret), Asm.Halt);
        h.WriteCsr(Csr.Mtvec, handler);
        h.Run(20);

        h.AssertHaltedAt(handler + 4);
        Assert.Equal(1UL, h.X(4) - h.X(3));
    }
}
