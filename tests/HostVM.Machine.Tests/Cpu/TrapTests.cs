using HostVM.Machine.Cpu;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Synchronous traps and the trap-return instructions (privileged spec, "Machine-Level ISA" and
/// "Supervisor-Level ISA"): causes and x-tval, delegation through medeleg, the status-stack
/// updates of trap entry, MRET and SRET, vectored trap vectors, and the TSR/TW/TVM/FS controls.
/// </summary>
public class TrapTests
{
    private const ulong Base = TestHart.ProgramBase;
    private const ulong Target = Base + 0x100;

    [Theory]
    [InlineData(PrivilegeMode.User, TrapCause.EcallFromU)]
    [InlineData(PrivilegeMode.Supervisor, TrapCause.EcallFromS)]
    [InlineData(PrivilegeMode.Machine, TrapCause.EcallFromM)]
    public void Ecall_cause_depends_on_the_privilege(PrivilegeMode mode, TrapCause cause)
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Nop, Asm.Ecall(), Asm.Halt);
        h.WriteCsr(Csr.Mtval, 0x5555);
        h.StartIn(mode, Base);
        h.Run(10);

        h.AssertTrappedToM(cause, 0, Base + 4);
        Assert.Equal((ulong)mode, (h.Mstatus >> Csr.StatusMppShift) & 3);
    }

    [Theory]
    [InlineData(PrivilegeMode.Machine)]
    [InlineData(PrivilegeMode.User)]
    public void Ebreak_is_a_breakpoint_with_its_pc_in_mtval(PrivilegeMode mode)
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Nop, Asm.Nop, Asm.Ebreak(), Asm.Halt);
        h.StartIn(mode, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.Breakpoint, Base + 8, Base + 8);
    }

    [Fact]
    public void Trap_entry_to_m_stacks_mie_into_mpie_and_clears_mie()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Ecall(), Asm.Halt);
        h.SetMstatus(Csr.StatusMie);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.EcallFromM, 0, Base);
        Assert.Equal(Csr.StatusMpie, h.Mstatus & (Csr.StatusMie | Csr.StatusMpie));
        Assert.Equal(3UL, (h.Mstatus >> Csr.StatusMppShift) & 3);
    }

    [Fact]
    public void Delegated_supervisor_ecall_goes_to_stvec_and_stacks_sie()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Nop, Asm.Ecall(), Asm.Halt);
        h.WriteCsr(Csr.Medeleg, 1UL << (int)TrapCause.EcallFromS);
        h.WriteCsr(Csr.Mcause, 0x77);
        h.WriteCsr(Csr.Stval, 0x5555);
        h.SetMstatus(Csr.StatusSie);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertHaltedAt(TestHart.STrapHalt);
        Assert.Equal(PrivilegeMode.Supervisor, h.Privilege);
        Assert.Equal((ulong)TrapCause.EcallFromS, h.ReadCsr(Csr.Scause));
        Assert.Equal(Base + 4, h.ReadCsr(Csr.Sepc));
        Assert.Equal(0UL, h.ReadCsr(Csr.Stval));
        ulong sstatus = h.ReadCsr(Csr.Sstatus);
        Assert.Equal(Csr.StatusSpp | Csr.StatusSpie, sstatus & (Csr.StatusSpp | Csr.StatusSpie | Csr.StatusSie));
        Assert.Equal(0x77UL, h.Mcause); // M-mode never saw it
    }

    [Fact]
    public void Delegated_user_illegal_instruction_goes_to_s_with_spp_user_and_the_bits_in_stval()
    {
        using var h = new TestHart();
        const uint illegal = 0xFFFF_FFFF;
        h.Write(Base, Asm.Nop, illegal, Asm.Halt);
        h.WriteCsr(Csr.Medeleg, 1UL << (int)TrapCause.IllegalInstruction);
        h.StartIn(PrivilegeMode.User, Base);
        h.Run(10);

        h.AssertHaltedAt(TestHart.STrapHalt);
        Assert.Equal(PrivilegeMode.Supervisor, h.Privilege);
        Assert.Equal((ulong)TrapCause.IllegalInstruction, h.ReadCsr(Csr.Scause));
        Assert.Equal(Base + 4, h.ReadCsr(Csr.Sepc));
        Assert.Equal((ulong)illegal, h.ReadCsr(Csr.Stval));
        Assert.Equal(0UL, h.ReadCsr(Csr.Sstatus) & Csr.StatusSpp);
    }

    [Fact]
    public void Delegated_user_ecall_goes_to_s()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Ecall(), Asm.Halt);
        h.WriteCsr(Csr.Medeleg, 1UL << (int)TrapCause.EcallFromU);
        h.StartIn(PrivilegeMode.User, Base);
        h.Run(10);

        h.AssertHaltedAt(TestHart.STrapHalt);
        Assert.Equal((ulong)TrapCause.EcallFromU, h.ReadCsr(Csr.Scause));
        Assert.Equal(0UL, h.ReadCsr(Csr.Sstatus) & Csr.StatusSpp);
    }

    [Fact]
    public void Undelegated_supervisor_exception_goes_to_m()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Ecall(), Asm.Halt);
        h.WriteCsr(Csr.Medeleg, 1UL << (int)TrapCause.EcallFromU); // not S
        h.WriteCsr(Csr.Scause, 0x77);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.EcallFromS, 0, Base);
        Assert.Equal(1UL, (h.Mstatus >> Csr.StatusMppShift) & 3);
        Assert.Equal(0x77UL, h.ReadCsr(Csr.Scause));
    }

    [Fact]
    public void Exceptions_in_m_mode_are_never_delegated()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Ebreak(), Asm.Halt);
        h.WriteCsr(Csr.Medeleg, 1UL << (int)TrapCause.Breakpoint);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.Breakpoint, Base, Base);
    }

    [Fact]
    public void Medeleg_cannot_delegate_ecall_from_m()
    {
        using var h = new TestHart();
        h.WriteCsr(Csr.Medeleg, ulong.MaxValue);
        Assert.Equal(0UL, h.ReadCsr(Csr.Medeleg) & (1UL << (int)TrapCause.EcallFromM));
    }

    [Fact]
    public void Mret_to_s_restores_mie_from_mpie_sets_mpp_to_u_and_clears_mprv()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Mret());
        h.Write(Target, Asm.Halt);
        h.WriteCsr(Csr.Mepc, Target);
        h.WriteCsr(Csr.Mstatus, (h.Mstatus & ~(Csr.StatusMie | Csr.StatusMpp)) | Csr.StatusMpie | Csr.StatusMprv | (1UL << Csr.StatusMppShift));
        h.Run(10);

        h.AssertHaltedAt(Target);
        Assert.Equal(PrivilegeMode.Supervisor, h.Privilege);
        ulong mstatus = h.Hart.State.Mstatus;
        Assert.Equal(Csr.StatusMie | Csr.StatusMpie, mstatus & (Csr.StatusMie | Csr.StatusMpie));
        Assert.Equal(0UL, mstatus & Csr.StatusMpp);
        Assert.Equal(0UL, mstatus & Csr.StatusMprv);
    }

    [Fact]
    public void Mret_to_u_with_mpie_clear_leaves_mie_clear()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Mret());
        h.Write(Target, Asm.Halt);
        h.WriteCsr(Csr.Mepc, Target);
        h.WriteCsr(Csr.Mstatus, (h.Mstatus & ~(Csr.StatusMpie | Csr.StatusMpp)) | Csr.StatusMie);
        h.Run(10);

        h.AssertHaltedAt(Target);
        Assert.Equal(PrivilegeMode.User, h.Privilege);
        ulong mstatus = h.Hart.State.Mstatus;
        Assert.Equal(Csr.StatusMpie, mstatus & (Csr.StatusMie | Csr.StatusMpie)); // MIE = old MPIE = 0; MPIE = 1
    }

    [Fact]
    public void Mret_to_m_keeps_mprv()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Mret());
        h.Write(Target, Asm.Halt);
        h.WriteCsr(Csr.Mepc, Target);
        h.SetMstatus(Csr.StatusMpp | Csr.StatusMprv);
        h.Run(10);

        h.AssertHaltedAt(Target);
        Assert.Equal(PrivilegeMode.Machine, h.Privilege);
        Assert.NotEqual(0UL, h.Mstatus & Csr.StatusMprv);
        Assert.Equal(0UL, h.Mstatus & Csr.StatusMpp); // MPP = U after any mret
    }

    [Fact]
    public void Sret_to_u_restores_sie_from_spie_and_clears_spp()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Sret());
        h.Write(Target, Asm.Halt);
        h.WriteCsr(Csr.Sepc, Target);
        h.SetMstatus(Csr.StatusSpie);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertHaltedAt(Target);
        Assert.Equal(PrivilegeMode.User, h.Privilege);
        ulong sstatus = h.Hart.State.Mstatus;
        Assert.Equal(Csr.StatusSie | Csr.StatusSpie, sstatus & (Csr.StatusSie | Csr.StatusSpie | Csr.StatusSpp));
    }

    [Fact]
    public void Sret_to_s_from_m_clears_mprv()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Sret());
        h.Write(Target, Asm.Halt);
        h.WriteCsr(Csr.Sepc, Target);
        h.SetMstatus(Csr.StatusSpp | Csr.StatusMprv);
        h.Run(10);

        h.AssertHaltedAt(Target);
        Assert.Equal(PrivilegeMode.Supervisor, h.Privilege);
        Assert.Equal(0UL, h.Hart.State.Mstatus & (Csr.StatusMprv | Csr.StatusSpp | Csr.StatusSie));
    }

    [Theory]
    [InlineData(PrivilegeMode.Supervisor, 0x3020_0073u)] // mret in S
    [InlineData(PrivilegeMode.User, 0x3020_0073u)]       // mret in U
    [InlineData(PrivilegeMode.User, 0x1020_0073u)]       // sret in U
    public void Return_from_a_higher_privilege_is_illegal(PrivilegeMode mode, uint instruction)
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Nop, instruction, Asm.Halt);
        h.WriteCsr(Csr.Mepc, Target);
        h.WriteCsr(Csr.Sepc, Target);
        h.StartIn(mode, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.IllegalInstruction, instruction, Base + 4);
    }

    [Fact]
    public void Tsr_makes_sret_illegal_in_s_but_not_in_m()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Sret(), Asm.Halt);
        h.Write(Target, Asm.Halt);
        h.WriteCsr(Csr.Sepc, Target);
        h.SetMstatus(Csr.StatusTsr);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);
        h.AssertTrappedToM(TrapCause.IllegalInstruction, Asm.Sret(), Base);

        using var m = new TestHart();
        m.Write(Base, Asm.Sret());
        m.Write(Target, Asm.Halt);
        m.WriteCsr(Csr.Sepc, Target);
        m.SetMstatus(Csr.StatusTsr);
        m.Run(10);
        m.AssertHaltedAt(Target);
    }

    [Fact]
    public void Tw_makes_wfi_illegal_in_s()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Wfi(), Asm.Halt);
        h.SetMstatus(Csr.StatusTw);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.IllegalInstruction, Asm.Wfi(), Base);
    }

    [Theory]
    [InlineData("csrr satp")]
    [InlineData("csrw satp")]
    [InlineData("sfence.vma")]
    public void Tvm_makes_satp_and_sfence_vma_illegal_in_s(string what)
    {
        uint instruction = what switch
        {
            "csrr satp" => Asm.Csrr(3, Csr.Satp),
            "csrw satp" => Asm.Csrw(Csr.Satp, 0),
            _ => Asm.SfenceVma(),
        };
        using var h = new TestHart();
        h.Write(Base, instruction, Asm.Halt);
        h.SetMstatus(Csr.StatusTvm);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        Assert.Equal(TestHart.MTrapHalt, h.Pc);
        Assert.Equal((ulong)TrapCause.IllegalInstruction, h.Mcause);
        Assert.Equal(Base, h.Mepc);

        using var allowed = new TestHart();
        allowed.Write(Base, instruction, Asm.Halt);
        allowed.StartIn(PrivilegeMode.Supervisor, Base);
        allowed.Run(10);
        allowed.AssertHaltedAt(Base + 4);
    }

    [Fact]
    public void Tvm_does_not_restrict_m_mode()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Csrr(3, Csr.Satp), Asm.Csrw(Csr.Satp, 0), Asm.SfenceVma(), Asm.Halt);
        h.SetMstatus(Csr.StatusTvm);
        h.Run(10);

        h.AssertHaltedAt(Base + 12);
    }

    [Fact]
    public void Vectored_mtvec_sends_exceptions_to_the_base()
    {
        using var h = new TestHart();
        const ulong vector = Base + 0x200;
        h.Write(vector, Asm.Halt, Asm.Halt, Asm.Halt, Asm.Halt);
        h.Write(Base, Asm.Ecall(), Asm.Halt);
        h.WriteCsr(Csr.Mtvec, vector | 1);
        h.Run(10);

        h.AssertHaltedAt(vector);
        Assert.Equal((ulong)TrapCause.EcallFromM, h.Mcause);
        Assert.Equal(vector | 1, h.ReadCsr(Csr.Mtvec));
    }

    public static TheoryData<string, uint> FpInstructions => new()
    {
        { "fadd.s", Asm.FaddS(1, 2, 3, 0) },
        { "flw", Asm.Flw(1, 10, 0) },
        { "fsd", Asm.Fsd(1, 10, 0) },
        { "fmv.x.w", Asm.FmvXW(3, 1) },
        { "fmv.d.x", Asm.FmvDX(1, 3) },
        { "csrr fflags", Asm.Csrr(3, Csr.Fflags) },
        { "csrw frm", Asm.Csrw(Csr.Frm, 0) },
        { "csrr fcsr", Asm.Csrr(3, Csr.Fcsr) },
    };

    [Theory]
    [MemberData(nameof(FpInstructions))]
    public void Fp_instructions_are_illegal_when_mstatus_fs_is_off(string name, uint instruction)
    {
        using var h = new TestHart();
        h.Write(Base, instruction, Asm.Halt);
        h.SetX(10, TestHart.Data);
        h.Run(10);

        Assert.True(h.Pc == TestHart.MTrapHalt, $"{name} did not trap");
        Assert.Equal((ulong)TrapCause.IllegalInstruction, h.Mcause);
        Assert.Equal(Base, h.Mepc);
    }

    [Fact]
    public void Compressed_fp_load_is_illegal_when_fs_is_off()
    {
        using var h = new TestHart();
        h.WriteHalves(Base, 0x2880); // c.fld f8, 16(x9)
        h.SetX(9, TestHart.Data);
        h.Run(10);

        Assert.Equal(TestHart.MTrapHalt, h.Pc);
        Assert.Equal((ulong)TrapCause.IllegalInstruction, h.Mcause);
    }

    [Theory]
    [InlineData("fadd.s")]
    [InlineData("fld")]
    [InlineData("fmv.w.x")]
    [InlineData("csrw fflags")]
    public void Fp_state_writes_set_fs_dirty_and_sd(string name)
    {
        uint instruction = name switch
        {
            "fadd.s" => Asm.FaddS(1, 2, 3, 0),
            "fld" => Asm.Fld(1, 10, 0),
            "fmv.w.x" => Asm.FmvWX(1, 0),
            _ => Asm.Csrw(Csr.Fflags, 0),
        };
        using var h = new TestHart();
        h.Write(Base, instruction, Asm.Halt);
        h.SetX(10, TestHart.Data);
        h.WriteCsr(Csr.Mstatus, h.Mstatus | (2UL << 13)); // FS = Clean
        Assert.Equal(0UL, h.Mstatus & Csr.StatusSd);
        h.Run(10);

        h.AssertHaltedAt(Base + 4);
        Assert.Equal(Csr.StatusFsDirty, h.Mstatus & Csr.StatusFs);
        Assert.NotEqual(0UL, h.Mstatus & Csr.StatusSd);
        Assert.NotEqual(0UL, h.ReadCsr(Csr.Sstatus) & Csr.StatusSd);
    }

    [Fact]
    public void Sfence_vma_is_illegal_in_u_mode()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.SfenceVma(), Asm.Halt);
        h.StartIn(PrivilegeMode.User, Base);
        h.Run(10);

        h.AssertHaltedAt(TestHart.MTrapHalt);
        Assert.Equal((ulong)TrapCause.IllegalInstruction, h.Mcause);
        Assert.Equal(Base, h.Mepc);
    }
}
