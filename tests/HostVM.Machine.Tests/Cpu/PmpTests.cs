using HostVM.Machine.Cpu;
using static HostVM.Machine.Tests.Cpu.PageTables;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Physical memory protection (privileged spec, "Physical Memory Protection"): NAPOT, NA4 and TOR
/// regions, the lowest-numbered matching entry decides, S/U accesses with no match fail, M-mode is
/// bound only by locked entries, a locked entry cannot be rewritten, MPRV makes M-mode data
/// accesses checked as the MPP mode, and page-table walks are checked as S-mode accesses.
/// Entry 15 is the firmware-style catch-all (NAPOT over everything, RWX) unless a test says otherwise.
/// </summary>
public class PmpTests
{
    private const ulong Base = TestHart.ProgramBase;
    private const ulong Data = TestHart.Data;
    private const byte PmpR = 1, PmpW = 2, PmpX = 4, Tor = 1 << 3, Na4 = 2 << 3, Napot = 3 << 3, Lock = 0x80;

    /// <summary>pmpaddr for a NAPOT region of <paramref name="size"/> bytes (a power of two, at least 8) at <paramref name="start"/>.</summary>
    private static ulong NapotAddress(ulong start, ulong size) => (start >> 2) | ((size >> 3) - 1);

    private static void SetEntry(TestHart h, int index, ulong address, byte cfg)
    {
        h.WriteCsr(Csr.PmpAddr0 + index, address);
        int cfgCsr = Csr.PmpCfg0 + (index / 8 * 2);
        int shift = index % 8 * 8;
        ulong value = h.ReadCsr(cfgCsr);
        h.WriteCsr(cfgCsr, (value & ~(0xFFUL << shift)) | ((ulong)cfg << shift));
    }

    private static TestHart ReadOnlyDataPage(byte extra = 0)
    {
        var h = new TestHart();
        SetEntry(h, 0, NapotAddress(Data, 0x1000), (byte)(Napot | PmpR | extra));
        return h;
    }

    [Theory]
    [InlineData(PrivilegeMode.Supervisor)]
    [InlineData(PrivilegeMode.User)]
    public void Store_below_m_into_a_read_only_region_is_an_access_fault(PrivilegeMode mode)
    {
        using var h = ReadOnlyDataPage();
        h.Poke64(Data + 0x10, 0x1234);
        h.Write(Base, Asm.Ld(3, 10, 0x10), Asm.Sd(0, 10, 0x10), Asm.Halt);
        h.SetX(10, Data);
        h.StartIn(mode, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.StoreAccessFault, Data + 0x10, Base + 4);
        Assert.Equal(0x1234UL, h.X(3));                 // the load was allowed
        Assert.Equal(0x1234UL, h.Peek64(Data + 0x10));
    }

    [Fact]
    public void Fetch_below_m_from_a_region_without_x_is_an_access_fault()
    {
        using var h = ReadOnlyDataPage();
        h.Write(Data, Asm.Halt);
        h.Write(Base, Asm.Jalr(0, 10, 0));
        h.SetX(10, Data);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.InstructionAccessFault, Data, Data);
    }

    [Fact]
    public void M_mode_ignores_an_unlocked_entry()
    {
        using var h = ReadOnlyDataPage();
        h.Write(Base, Asm.Sd(5, 10, 0x10), Asm.Halt);
        h.SetX(5, 0x99);
        h.SetX(10, Data);
        h.Run(10);

        h.AssertHaltedAt(Base + 4);
        Assert.Equal(0x99UL, h.Peek64(Data + 0x10));
    }

    [Fact]
    public void Locked_entry_binds_m_mode_too()
    {
        using var h = ReadOnlyDataPage(Lock);
        h.Poke64(Data + 0x10, 0x1234);
        h.Write(Base, Asm.Ld(3, 10, 0x10), Asm.Sd(5, 10, 0x10), Asm.Halt);
        h.SetX(10, Data);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.StoreAccessFault, Data + 0x10, Base + 4);
        Assert.Equal(0x1234UL, h.X(3));
        Assert.Equal(0x1234UL, h.Peek64(Data + 0x10));
    }

    [Fact]
    public void Locked_entry_cannot_be_rewritten_until_reset()
    {
        using var h = ReadOnlyDataPage(Lock);
        ulong address = h.ReadCsr(Csr.PmpAddr0);
        h.Write(Base,
            Asm.Csrw(Csr.PmpCfg0, 0),
            Asm.Csrw(Csr.PmpAddr0, 0),
            Asm.Csrr(3, Csr.PmpCfg0),
            Asm.Csrr(4, Csr.PmpAddr0),
            Asm.Halt);
        h.Run(20);

        h.AssertHaltedAt(Base + 16);
        Assert.Equal((ulong)(Napot | PmpR | Lock), h.X(3) & 0xFF);
        Assert.Equal(address, h.X(4));
    }

    [Fact]
    public void Locked_tor_entry_also_locks_the_address_below_it()
    {
        using var h = new TestHart();
        SetEntry(h, 0, Data >> 2, 0);
        SetEntry(h, 1, (Data + 0x1000) >> 2, Tor | PmpR | Lock);
        h.WriteCsr(Csr.PmpAddr0, 0x1234);

        Assert.Equal(Data >> 2, h.ReadCsr(Csr.PmpAddr0));
    }

    [Theory]
    [InlineData(0x000UL, false)]
    [InlineData(0xFF8UL, false)]
    [InlineData(0x1000UL, true)]
    [InlineData(unchecked((ulong)-8L), true)]
    public void Tor_region_covers_from_the_previous_address_up_to_its_own(ulong offset, bool allowed)
    {
        using var h = new TestHart();
        SetEntry(h, 0, Data >> 2, 0);                          // OFF: only a bound
        SetEntry(h, 1, (Data + 0x1000) >> 2, Tor | PmpR);
        h.Write(Base, Asm.Sd(0, 10, 0), Asm.Halt);
        h.SetX(10, Data + offset);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        if (allowed)
        {
            h.AssertHaltedAt(Base + 4);
        }
        else
        {
            h.AssertTrappedToM(TrapCause.StoreAccessFault, Data + offset, Base);
        }
    }

    [Fact]
    public void Tor_entry_0_starts_at_address_0()
    {
        using var h = new TestHart();
        SetEntry(h, 0, (Base + 0x1000) >> 2, Tor | PmpR | PmpX); // [0, Base + 4 KiB): code, read-only
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Sd(0, 10, 0), Asm.Halt);
        h.SetX(10, Base + 0x800);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.StoreAccessFault, Base + 0x800, Base + 4);
    }

    [Fact]
    public void Lowest_numbered_matching_entry_wins()
    {
        using var h = new TestHart();
        SetEntry(h, 0, NapotAddress(Data, 0x1000), Napot | PmpR);
        SetEntry(h, 1, NapotAddress(Data, 0x1_0000), Napot | PmpR | PmpW);
        h.Write(Base, Asm.Sd(0, 11, 0), Asm.Sd(0, 10, 0), Asm.Halt);
        h.SetX(10, Data);
        h.SetX(11, Data + 0x2000);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.StoreAccessFault, Data, Base + 4);
    }

    [Fact]
    public void Below_m_an_access_no_entry_matches_fails()
    {
        using var h = new TestHart(openPmp: false);
        SetEntry(h, 0, NapotAddress(Base, 0x1000), Napot | PmpR | PmpX); // the code page only
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Halt);
        h.SetX(10, Data);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.LoadAccessFault, Data, Base);
    }

    [Fact]
    public void Aligned_access_only_partly_inside_a_region_fails_even_in_m_mode()
    {
        using var h = new TestHart();
        SetEntry(h, 0, (Data + 4) >> 2, Na4 | PmpR | PmpW);    // the 4 bytes at Data + 4
        h.Write(Base,
            Asm.Lw(3, 10, 0),               // outside the entry: fine
            Asm.Lw(4, 10, 4),               // wholly inside: fine for M
            Asm.Ld(5, 10, 0),               // half inside: fails whatever the permissions
            Asm.Halt);
        h.SetX(10, Data);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.LoadAccessFault, Data, Base + 8);
    }

    [Fact]
    public void Mprv_checks_m_mode_data_accesses_as_the_mpp_mode()
    {
        using var h = new TestHart();
        SetEntry(h, 0, NapotAddress(Data, 0x1000), Napot);     // no permissions
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Csrrs(0, Csr.Mstatus, 11), Asm.Ld(4, 10, 0), Asm.Halt);
        h.SetX(10, Data);
        h.SetX(11, Csr.StatusMprv);
        h.WriteCsr(Csr.Mstatus, (h.Mstatus & ~Csr.StatusMpp) | (1UL << Csr.StatusMppShift)); // MPP = S
        h.Run(10);

        h.AssertTrappedToM(TrapCause.LoadAccessFault, Data, Base + 8);
    }

    [Fact]
    public void Store_that_filled_no_tlb_entry_does_not_open_the_rest_of_the_page()
    {
        using var h = new TestHart();
        SetEntry(h, 0, NapotAddress(Data, 8), Napot | PmpR);   // 8 read-only bytes at Data
        h.Write(Base, Asm.Sw(0, 10, 0x100), Asm.Sw(0, 10, 0), Asm.Halt);
        h.SetX(10, Data);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.StoreAccessFault, Data, Base + 4);
    }

    [Fact]
    public void Amo_on_a_page_does_not_open_a_read_only_region_elsewhere_on_it()
    {
        using var h = new TestHart();
        SetEntry(h, 0, NapotAddress(Data, 8), Napot | PmpR);   // 8 read-only bytes at Data
        h.Write(Base,
            Asm.AmoaddW(0, 11, 0),          // Data + 0x100: allowed by the catch-all
            Asm.Sw(5, 10, 0),               // Data: read-only
            Asm.Halt);
        h.SetX(5, 0xBAD);
        h.SetX(10, Data);
        h.SetX(11, Data + 0x100);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.StoreAccessFault, Data, Base + 4);
        Assert.Equal(0U, h.Peek32(Data));
    }

    [Fact]
    public void Page_table_walk_is_checked_by_pmp_as_a_supervisor_access()
    {
        // Privileged spec: implicit accesses of the page-table walk are checked against PMP with an
        // effective privilege of S; a failing check raises an access fault for the original access.
        using var h = new TestHart();
        var pt = new PageTables(h, 3);
        pt.IdentityMapRam();                                   // root table at Pool
        const ulong va = 0x4000_0000;
        pt.Map(va, Data, V | R | W | A | D);                   // level-1 table at Pool + 4K, level-0 at Pool + 8K
        SetEntry(h, 0, NapotAddress(PageTables.Pool + 0x2000, 0x1000), Napot); // no access to the level-0 table
        h.WriteCsr(Csr.Satp, pt.Satp);
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Halt);
        h.SetX(10, va);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.LoadAccessFault, va, Base);
    }

    [Fact]
    public void Pmp_entries_read_back_with_reserved_combinations_cleared()
    {
        using var h = new TestHart();
        SetEntry(h, 2, NapotAddress(Data, 0x1000), Napot | PmpW); // W without R is reserved
        ulong cfg = (h.ReadCsr(Csr.PmpCfg0) >> 16) & 0xFF;
        Assert.NotEqual((ulong)(Napot | PmpW), cfg);
        Assert.Equal(0UL, cfg & 0x60);                        // bits 6:5 read zero
    }

    [Fact]
    public void New_pmp_entry_applies_to_a_page_already_accessed()
    {
        using var h = new TestHart();
        h.Write(Base,
            Asm.Sd(0, 10, 0),                   // M-mode store: the page may now be cached
            Asm.Csrw(Csr.PmpAddr0, 11),
            Asm.Csrw(Csr.PmpCfg0, 12),          // locked, read-only
            Asm.Sd(0, 10, 8),
            Asm.Halt);
        h.SetX(10, Data);
        h.SetX(11, NapotAddress(Data, 0x1000));
        h.SetX(12, (ulong)(Napot | PmpR | Lock));
        h.Run(20);

        h.AssertTrappedToM(TrapCause.StoreAccessFault, Data + 8, Base + 12);
    }
}
