using HostVM.Machine.Cpu;
using static HostVM.Machine.Tests.Cpu.PageTables;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Sv39/Sv48/Sv57 translation (privileged spec, "Supervisor-Level ISA", virtual-memory sections):
/// page tables are built in RAM by the test, the code runs in S- or U-mode, and every fault is
/// checked for its cause (12 fetch, 13 load, 15 store/AMO) and x-tval (the virtual address).
/// Code and page tables are identity-mapped by a 1 GiB page over RAM.
/// </summary>
public class MmuTests
{
    private const ulong Base = TestHart.ProgramBase;
    private const ulong Data = TestHart.Data;
    private const ulong SupervisorRwx = V | R | W | X | A | D;
    private const ulong Pattern = 0x1122_3344_5566_7788;

    /// <summary>A test address in the upper (negative) half, so the top-level index and sign-extension both matter.</summary>
    private static ulong TestVa(int levels) => levels switch
    {
        3 => 0xFFFF_FFC0_0000_0000, // bit 38 and up
        4 => 0xFFFF_8000_0000_0000, // bit 47 and up
        _ => 0xFF00_0000_0000_0000, // bit 56 and up
    };

    private static TestHart NewHart(int levels, out PageTables pt, ulong ramFlags = SupervisorRwx)
    {
        var h = new TestHart();
        pt = new PageTables(h, levels);
        pt.IdentityMapRam(ramFlags);
        h.WriteCsr(Csr.Satp, pt.Satp);
        return h;
    }

    public static TheoryData<int, int> PageSizes => new()
    {
        { 3, 0 }, { 3, 1 }, { 3, 2 },
        { 4, 0 }, { 4, 1 }, { 4, 2 }, { 4, 3 },
        { 5, 0 }, { 5, 1 }, { 5, 2 }, { 5, 3 }, { 5, 4 },
    };

    [Theory]
    [MemberData(nameof(PageSizes))]
    public void Leaf_at_every_level_translates_loads_and_stores(int levels, int level)
    {
        using var h = NewHart(levels, out var pt);
        ulong va = TestVa(levels);
        // A 4 KiB page maps to Data; a superpage maps to a suitably aligned physical base below it.
        ulong pageSize = 1UL << (12 + (9 * level));
        ulong pa = level == 0 ? Data : Data & ~(pageSize - 1);
        ulong offset = (level == 0 ? 0 : Data - pa) + 0x128;
        pt.Map(va, pa, V | R | W | A | D, level);
        h.Poke64(Data + 0x128, Pattern);
        h.Write(Base,
            Asm.Ld(3, 10, 0),
            Asm.Sd(5, 10, 8),
            Asm.Halt);
        h.SetX(5, 0xABCD);
        h.SetX(10, va + offset);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertHaltedAt(Base + 8);
        Assert.Equal(Pattern, h.X(3));
        Assert.Equal(0xABCDUL, h.Peek64(Data + 0x130));
    }

    [Theory]
    [InlineData(3, 1, 0x8001_0000UL)]   // 2 MiB page whose PPN is not 2 MiB aligned
    [InlineData(3, 2, 0x8020_0000UL)]   // 1 GiB page, PPN only 2 MiB aligned
    [InlineData(4, 3, 0x4000_0000UL)]   // 512 GiB page, PPN only 1 GiB aligned
    [InlineData(5, 4, 0x80_0000_0000UL)] // 256 TiB page, PPN only 512 GiB aligned
    public void Misaligned_superpage_is_a_page_fault(int levels, int level, ulong pa)
    {
        using var h = NewHart(levels, out var pt);
        ulong va = TestVa(levels);
        pt.Map(va, pa, V | R | W | A | D, level);
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Halt);
        h.SetX(10, va + 8);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertTrappedToM(TrapCause.LoadPageFault, va + 8, Base);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Walker_sets_a_on_any_access_and_d_only_on_stores(int levels)
    {
        using var h = NewHart(levels, out var pt);
        ulong va = TestVa(levels);
        ulong pte = pt.Map(va, Data, V | R | W);
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Halt);
        h.Write(Base + 0x40, Asm.Sd(3, 10, 0), Asm.Halt);
        h.SetX(10, va);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertHaltedAt(Base + 4);
        Assert.Equal(A, h.Peek64(pte) & (A | D));

        h.Hart.Pc = Base + 0x40;
        h.Run(20);
        h.AssertHaltedAt(Base + 0x44);
        Assert.Equal(A | D, h.Peek64(pte) & (A | D));
    }

    [Fact]
    public void Walker_sets_a_on_a_fetch()
    {
        using var h = NewHart(3, out var pt);
        const ulong codeVa = 0x4000_2000;
        ulong pte = pt.Map(codeVa, Base + 0x2000, V | R | X);
        h.Write(Base + 0x2000, Asm.Addi(5, 0, 1), Asm.Halt);
        h.StartIn(PrivilegeMode.Supervisor, codeVa);
        h.Run(20);

        Assert.Equal(codeVa + 4, h.Pc);
        Assert.Equal(1UL, h.X(5));
        Assert.Equal(A, h.Peek64(pte) & (A | D));
    }

    [Fact]
    public void Store_to_a_read_only_page_is_a_store_page_fault_and_writes_nothing()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Data, V | R | A | D);
        h.Poke64(Data, Pattern);
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Sd(0, 10, 0), Asm.Halt);
        h.SetX(10, va);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertTrappedToM(TrapCause.StorePageFault, va, Base + 4);
        Assert.Equal(Pattern, h.X(3));
        Assert.Equal(Pattern, h.Peek64(Data));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Amo_or_sc_on_a_read_only_page_is_a_store_page_fault(bool sc)
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Data, V | R | A | D);
        uint instruction = sc ? Asm.ScD(3, 10, 5) : Asm.AmoaddW(3, 10, 5);
        h.Write(Base, Asm.LrD(4, 10), instruction, Asm.Halt);
        h.SetX(10, va);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertTrappedToM(TrapCause.StorePageFault, va, Base + 4);
        Assert.Equal(0UL, h.Peek64(Data));
    }

    [Fact]
    public void Supervisor_cannot_read_or_write_user_pages_without_sum()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Data, V | R | W | U | A | D);
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Halt);
        h.Write(Base + 0x40, Asm.Sd(3, 10, 0), Asm.Halt);
        h.SetX(10, va);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);
        h.AssertTrappedToM(TrapCause.LoadPageFault, va, Base);

        h.StartIn(PrivilegeMode.Supervisor, Base + 0x40);
        h.Run(20);
        h.AssertTrappedToM(TrapCause.StorePageFault, va, Base + 0x40);
    }

    [Fact]
    public void Supervisor_reads_and_writes_user_pages_with_sum()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Data, V | R | W | U | A | D);
        h.Poke64(Data, Pattern);
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Sd(3, 10, 8), Asm.Halt);
        h.SetX(10, va);
        h.SetMstatus(Csr.StatusSum);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertHaltedAt(Base + 8);
        Assert.Equal(Pattern, h.Peek64(Data + 8));
    }

    [Fact]
    public void Clearing_sum_takes_effect_for_a_page_already_used()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Data, V | R | W | U | A | D);
        h.Write(Base,
            Asm.Ld(3, 10, 0),                   // allowed: SUM = 1
            Asm.Csrrc(0, Csr.Sstatus, 6),       // SUM = 0
            Asm.Ld(4, 10, 0),                   // must fault now
            Asm.Halt);
        h.SetX(6, Csr.StatusSum);
        h.SetX(10, va);
        h.SetMstatus(Csr.StatusSum);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertTrappedToM(TrapCause.LoadPageFault, va, Base + 8);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Supervisor_never_executes_user_pages_even_with_sum(bool sum)
    {
        using var h = NewHart(3, out var pt);
        const ulong codeVa = 0x4000_2000;
        pt.Map(codeVa, Base + 0x2000, V | R | X | U | A);
        h.Write(Base + 0x2000, Asm.Halt);
        h.Write(Base, Asm.Jalr(1, 10, 0), Asm.Halt);
        h.SetX(10, codeVa);
        if (sum)
        {
            h.SetMstatus(Csr.StatusSum);
        }

        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertTrappedToM(TrapCause.InstructionPageFault, codeVa, codeVa);
    }

    [Fact]
    public void Mxr_makes_execute_only_pages_readable()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Data, V | X | A);
        h.Poke64(Data, Pattern);
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Halt);
        h.SetX(10, va);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);
        h.AssertTrappedToM(TrapCause.LoadPageFault, va, Base);

        h.SetMstatus(Csr.StatusMxr);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);
        h.AssertHaltedAt(Base + 4);
        Assert.Equal(Pattern, h.X(3));
    }

    [Fact]
    public void Mxr_does_not_make_execute_only_pages_writable()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Data, V | X | A | D);
        h.Write(Base, Asm.Sd(0, 10, 0), Asm.Halt);
        h.SetX(10, va);
        h.SetMstatus(Csr.StatusMxr);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertTrappedToM(TrapCause.StorePageFault, va, Base);
    }

    [Theory]
    [InlineData("load", TrapCause.LoadPageFault)]
    [InlineData("store", TrapCause.StorePageFault)]
    [InlineData("fetch", TrapCause.InstructionPageFault)]
    public void User_mode_cannot_touch_supervisor_pages(string access, TrapCause cause)
    {
        using var h = NewHart(3, out var pt, ramFlags: SupervisorRwx | U); // user code
        ulong va = TestVa(3);
        pt.Map(va, Base + 0x2000, V | R | W | X | A | D);                   // a supervisor page
        h.Write(Base + 0x2000, Asm.Halt);
        uint instruction = access switch
        {
            "load" => Asm.Ld(3, 10, 0),
            "store" => Asm.Sd(3, 10, 0),
            _ => Asm.Jalr(0, 10, 0),
        };
        h.Write(Base, instruction, Asm.Halt);
        h.SetX(10, va);
        h.StartIn(PrivilegeMode.User, Base);
        h.Run(20);

        h.AssertTrappedToM(cause, va, access == "fetch" ? va : Base);
        Assert.Equal(0UL, (h.Mstatus >> Csr.StatusMppShift) & 3);
    }

    [Fact]
    public void User_mode_uses_user_pages()
    {
        using var h = NewHart(4, out var pt, ramFlags: SupervisorRwx | U);
        ulong va = TestVa(4);
        pt.Map(va, Data, V | R | W | U | A | D);
        h.Poke64(Data, Pattern);
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Sd(3, 10, 8), Asm.Halt);
        h.SetX(10, va);
        h.StartIn(PrivilegeMode.User, Base);
        h.Run(20);

        h.AssertHaltedAt(Base + 8);
        Assert.Equal(PrivilegeMode.User, h.Privilege);
        Assert.Equal(Pattern, h.Peek64(Data + 8));
    }

    [Fact]
    public void A_translation_used_by_supervisor_is_not_reused_for_user_mode()
    {
        using var h = NewHart(3, out var pt, ramFlags: SupervisorRwx | U);
        ulong va = TestVa(3);
        pt.Map(va, Data, V | R | W | A | D);             // supervisor-only data
        // Code is on a U page: S-mode can only run it... it cannot (S never executes U pages),
        // so the supervisor part runs from a separate supervisor mapping of the same code.
        const ulong sCode = 0x4000_0000;
        pt.Map(sCode, Base, V | R | X | A);
        h.Write(Base,
            Asm.Ld(3, 10, 0),                            // S: allowed, the TLB now holds the page
            Asm.Sret(),                                  // to U at sepc
            Asm.Halt);
        h.Write(Base + 0x40, Asm.Ld(4, 10, 0), Asm.Halt); // U: must fault
        h.WriteCsr(Csr.Sepc, Base + 0x40);
        h.SetX(10, va);
        h.StartIn(PrivilegeMode.Supervisor, sCode);
        h.Run(20);

        h.AssertTrappedToM(TrapCause.LoadPageFault, va, Base + 0x40);
        Assert.Equal(0UL, (h.Mstatus >> Csr.StatusMppShift) & 3);
    }

    [Fact]
    public void Mprv_with_mpp_s_makes_m_mode_loads_and_stores_translate()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Data, V | R | W | A | D);
        h.Poke64(Data, Pattern);
        h.Write(Base,
            Asm.Ld(3, 10, 0),
            Asm.Sd(3, 10, 8),
            Asm.Halt);                                   // M-mode fetches stay untranslated
        h.SetX(10, va);
        h.WriteCsr(Csr.Mstatus, (h.Mstatus & ~Csr.StatusMpp) | (1UL << Csr.StatusMppShift) | Csr.StatusMprv);
        h.Run(20);

        h.AssertHaltedAt(Base + 8);
        Assert.Equal(PrivilegeMode.Machine, h.Privilege);
        Assert.Equal(Pattern, h.X(3));
        Assert.Equal(Pattern, h.Peek64(Data + 8));
    }

    [Fact]
    public void Mprv_with_mpp_u_checks_user_permissions()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Data, V | R | W | A | D);             // not U
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Halt);
        h.SetX(10, va);
        h.WriteCsr(Csr.Mstatus, (h.Mstatus & ~Csr.StatusMpp) | Csr.StatusMprv); // MPP = U
        h.Run(20);

        h.AssertTrappedToM(TrapCause.LoadPageFault, va, Base);
        // The trap sets MPP = M, so after it M-mode is untranslated again.
        Assert.Equal(3UL, (h.Mstatus >> Csr.StatusMppShift) & 3);
    }

    [Fact]
    public void Without_mprv_m_mode_ignores_satp()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Data, V | R | W | A | D);
        h.Poke64(Data, Pattern);
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Halt);
        h.SetX(10, Data);
        h.Run(20);

        h.AssertHaltedAt(Base + 4);
        Assert.Equal(Pattern, h.X(3));
    }

    public static TheoryData<string, int, ulong, int> InvalidPtes => new()
    {
        // name, levels, pte flags (a 4 KiB leaf to Data unless noted), level of the bad entry
        { "V = 0", 3, R | W | X | A | D, 0 },
        { "W without R", 3, V | W | A | D, 0 },
        { "W|X without R", 4, V | W | X | A | D, 0 },
        { "reserved bit 54", 3, V | R | W | X | A | D | (1UL << 54), 0 },
        { "PBMT bits 62:61 (no Svpbmt)", 4, V | R | W | X | A | D | (1UL << 61), 0 },
        { "N bit 63 (no Svnapot)", 5, V | R | W | X | A | D | (1UL << 63), 0 },
        { "non-leaf with V = 0", 3, 0, 1 },
        { "pointer at level 0", 3, V, 0 },
    };

    [Theory]
    [MemberData(nameof(InvalidPtes))]
    public void Invalid_pte_is_a_page_fault_of_the_access_type(string name, int levels, ulong flags, int level)
    {
        foreach (var (access, cause) in new[] { ("load", TrapCause.LoadPageFault), ("store", TrapCause.StorePageFault), ("fetch", TrapCause.InstructionPageFault) })
        {
            using var h = NewHart(levels, out var pt);
            ulong va = TestVa(levels) + 0x3000;
            if (level == 0)
            {
                pt.SetPte(va, 0, Leaf(Data, flags));
            }
            else
            {
                pt.SetPte(va, level, flags);
            }

            uint instruction = access switch
            {
                "load" => Asm.Ld(3, 10, 8),
                "store" => Asm.Sd(3, 10, 8),
                _ => Asm.Jalr(0, 10, 8),
            };
            h.Write(Base, instruction, Asm.Halt);
            h.SetX(10, va);
            h.StartIn(PrivilegeMode.Supervisor, Base);
            h.Run(20);

            Assert.True(h.Pc == TestHart.MTrapHalt, $"{name}, {access}: no trap");
            Assert.True((ulong)cause == h.Mcause, $"{name}, {access}: mcause {h.Mcause}");
            Assert.True(va + 8 == h.Mtval, $"{name}, {access}: mtval 0x{h.Mtval:x}");
        }
    }

    [Theory]
    [InlineData(3, 0x0000_0040_0000_0000UL)]
    [InlineData(3, 0xFFFF_FF80_0000_0000UL ^ 0x8000_0000_0000_0000UL)]
    [InlineData(4, 0x0000_8000_0000_0000UL)]
    [InlineData(4, 0xFFFF_0000_0000_0000UL)]
    [InlineData(5, 0x0100_0000_0000_0000UL)]
    [InlineData(5, 0xFE00_0000_0000_0000UL)]
    public void Non_canonical_address_is_a_page_fault(int levels, ulong va)
    {
        foreach (var (access, cause) in new[] { ("load", TrapCause.LoadPageFault), ("store", TrapCause.StorePageFault), ("fetch", TrapCause.InstructionPageFault) })
        {
            using var h = NewHart(levels, out var pt);
            // Map what the address would reach if only its low bits were used.
            ulong vaBits = 12 + (9UL * (ulong)levels);
            ulong truncated = va & ((1UL << (int)vaBits) - 1);
            pt.Map(truncated, Data, V | R | W | X | A | D);
            uint instruction = access switch
            {
                "load" => Asm.Ld(3, 10, 0),
                "store" => Asm.Sd(3, 10, 0),
                _ => Asm.Jalr(0, 10, 0),
            };
            h.Write(Base, instruction, Asm.Halt);
            h.SetX(10, va);
            h.StartIn(PrivilegeMode.Supervisor, Base);
            h.Run(20);

            Assert.True(h.Pc == TestHart.MTrapHalt, $"{access} of 0x{va:x}: no trap");
            Assert.Equal((ulong)cause, h.Mcause);
            Assert.Equal(va, h.Mtval);
        }
    }

    [Fact]
    public void Delegated_page_fault_reports_scause_and_stval()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3) + 0x5008;
        h.Write(Base, Asm.Sd(0, 10, 0), Asm.Halt);
        h.WriteCsr(Csr.Medeleg, 1UL << (int)TrapCause.StorePageFault);
        h.SetX(10, va);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertHaltedAt(TestHart.STrapHalt);
        Assert.Equal((ulong)TrapCause.StorePageFault, h.ReadCsr(Csr.Scause));
        Assert.Equal(va, h.ReadCsr(Csr.Stval));
        Assert.Equal(Base, h.ReadCsr(Csr.Sepc));
    }

    [Fact]
    public void Sfence_vma_makes_a_changed_pte_visible()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        ulong pte = pt.Map(va, Data, V | R | W | A | D);
        h.Poke64(Data, 1);
        h.Poke64(Data + 0x1000, 2);
        h.Write(Base,
            Asm.Ld(3, 10, 0),
            Asm.Sd(6, 11, 0),           // remap va to Data + 0x1000 (the tables are identity-mapped)
            Asm.SfenceVma(),
            Asm.Ld(4, 10, 0),
            Asm.Halt);
        h.SetX(6, Leaf(Data + 0x1000, V | R | W | A | D));
        h.SetX(10, va);
        h.SetX(11, pte);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertHaltedAt(Base + 16);
        Assert.Equal(1UL, h.X(3));
        Assert.Equal(2UL, h.X(4));
    }

    [Fact]
    public void Sfence_vma_makes_an_invalidated_pte_fault()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        ulong pte = pt.Map(va, Data, V | R | W | A | D);
        h.Write(Base,
            Asm.Sd(0, 10, 0),
            Asm.Sd(0, 11, 0),           // pte = 0
            Asm.SfenceVma(10, 0),       // this address, all address spaces
            Asm.Sd(0, 10, 0),
            Asm.Halt);
        h.SetX(10, va);
        h.SetX(11, pte);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertTrappedToM(TrapCause.StorePageFault, va, Base + 12);
    }

    [Fact]
    public void Writing_satp_switches_to_other_tables()
    {
        using var h = NewHart(3, out var first);
        ulong va = TestVa(3);
        first.Map(va, Data, V | R | W | A | D);
        var second = new PageTables(h, 4, PageTables.Pool + (PageTables.PoolPages * 0x1000));
        second.IdentityMapRam();
        second.Map(TestVa(4), Data + 0x1000, V | R | W | A | D);
        h.Poke64(Data, 1);
        h.Poke64(Data + 0x1000, 2);
        h.Write(Base,
            Asm.Ld(3, 10, 0),
            Asm.Csrw(Csr.Satp, 5),
            Asm.SfenceVma(),
            Asm.Ld(4, 11, 0),
            Asm.Halt);
        h.SetX(5, second.Satp);
        h.SetX(10, va);
        h.SetX(11, TestVa(4));
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertHaltedAt(Base + 16);
        Assert.Equal(1UL, h.X(3));
        Assert.Equal(2UL, h.X(4));
    }

    [Fact]
    public void Turning_paging_on_takes_effect_without_a_fence()
    {
        // Privileged spec (satp): a change of MODE from Bare takes effect immediately, without
        // SFENCE.VMA (Linux enables paging this way). A translation cached in Bare mode must not survive.
        using var h = new TestHart();
        var pt = new PageTables(h, 3);
        pt.IdentityMapRam(V | X | A); // executable, but not readable once paging is on
        h.Poke64(Data, 7);
        h.Write(Base,
            Asm.Ld(3, 10, 0),        // Bare: reads 7, caching an identity translation of Data
            Asm.Csrw(Csr.Satp, 5),
            Asm.Ld(4, 10, 0),        // paged: Data is not readable -> load page fault
            Asm.Halt);
        h.SetX(5, pt.Satp);
        h.SetX(10, Data);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        Assert.Equal(7UL, h.X(3));
        Assert.Equal((ulong)TrapCause.LoadPageFault, h.Mcause);
        Assert.Equal(Base + 8, h.Mepc);
    }

    [Fact]
    public void Misaligned_access_across_two_virtual_pages_uses_both_translations()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Data + 0x3000, V | R | W | A | D);            // not contiguous physically
        pt.Map(va + 0x1000, Data + 0x1000, V | R | W | A | D);
        h.Poke64(Data + 0x3FF8, 0x8877_6655_4433_2211);
        h.Poke64(Data + 0x1000, 0xFFEE_DDCC_BBAA_9900);
        h.Write(Base,
            Asm.Ld(3, 10, 0x7FC),                                // va + 0xffc .. va + 0x1003
            Asm.Sd(5, 10, 0x7FD),                                // va + 0xffd .. va + 0x1004
            Asm.Halt);
        h.SetX(5, 0x0102_0304_0506_0708);
        h.SetX(10, va + 0x800);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        h.AssertHaltedAt(Base + 8);
        Assert.Equal(0xBBAA_9900_8877_6655UL, h.X(3));
        Assert.Equal(0x0607_0855_4433_2211UL, h.Peek64(Data + 0x3FF8));
        Assert.Equal(0xFFEE_DD01_0203_0405UL, h.Peek64(Data + 0x1000));
    }

    [Fact]
    public void Misaligned_load_into_an_unmapped_second_page_faults_with_an_address_in_that_page()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Data, V | R | W | A | D);
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Halt);
        h.SetX(3, 0x3333);
        h.SetX(10, va + 0xFFD);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(20);

        Assert.Equal(TestHart.MTrapHalt, h.Pc);
        Assert.Equal((ulong)TrapCause.LoadPageFault, h.Mcause);
        // "the virtual address of the portion of the access that caused the fault"
        Assert.InRange(h.Mtval, va + 0x1000, va + 0x1004);
        Assert.Equal(0x3333UL, h.X(3));
    }

    [Fact]
    public void Fetch_of_an_instruction_whose_second_half_is_on_an_unmapped_page_is_a_page_fault_there()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Base + 0x2000, V | R | X | A);
        h.WriteHalves(Base + 0x2FFE, Asm.Halves(Asm.Addi(5, 5, 1))[0]);
        h.Write(Base, Asm.Jalr(0, 10, 0));
        h.SetX(10, va + 0xFFE);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.InstructionPageFault, va + 0x1000, va + 0xFFE);
        Assert.Equal(0UL, h.X(5));
    }

    [Fact]
    public void Execute_only_page_can_be_fetched_but_not_read()
    {
        using var h = NewHart(3, out var pt);
        ulong va = TestVa(3);
        pt.Map(va, Base + 0x2000, V | X | A);
        h.Write(Base + 0x2000, Asm.Addi(5, 5, 1), Asm.Ld(3, 10, 0), Asm.Halt);
        h.SetX(10, va);
        h.StartIn(PrivilegeMode.Supervisor, va);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.LoadPageFault, va, va + 4);
        Assert.Equal(1UL, h.X(5));
    }
}
