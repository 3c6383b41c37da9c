using HostVM.Machine.Cpu;
using HostVM.Machine.Memory;
using HostVM.Machine.Tests.Memory;
using static HostVM.Machine.Tests.Cpu.PageTables;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Every way a hart writes RAM marks the dirty-page log, exactly the pages written: plain stores,
/// misaligned ones across a page, AMOs, SC, FP stores, stores to code pages and the page walker's
/// A/D updates; and a page written again after a pass is marked again (the pass dropped the write-TLB
/// entry, so the store left the fast path).
/// </summary>
public sealed class DirtyPageStoreTests : IDisposable
{
    private const ulong Base = TestHart.ProgramBase;
    private const ulong Data = TestHart.Data;
    private const ulong Page = GuestRam.PageSize;

    private readonly TestHart _h = new();
    private readonly DirtyPageTracker _tracker;
    private readonly DirtyPageSet _set;

    public DirtyPageStoreTests()
    {
        _tracker = new DirtyPageTracker(_h.Ram, [_h.Hart]);
        _set = _tracker.NewSet();
    }

    public void Dispose() => _h.Dispose();

    private static int PageOf(ulong address) => (int)((address - TestHart.RamBase) / Page);

    /// <summary>One pass; the pages it took, in order.</summary>
    private int[] Pass()
    {
        _tracker.CollectPass(_set);
        return DirtyPages.List(_set);
    }

    /// <summary>Runs a program at <see cref="Base"/> with x10 = Data, x11 = Data + 3 pages, to its halt.</summary>
    private void RunProgram(params uint[] program)
    {
        _h.Write(Base, [.. program, Asm.Halt]);
        _h.Hart.Pc = Base;
        _h.SetX(10, Data);
        _h.SetX(11, Data + (3 * Page));
        _h.SetX(5, 0x1234_5678_9ABC_DEF0);
        _h.Run(100);
        _h.AssertHaltedAt(Base + (4 * (ulong)program.Length));
    }

    [Fact]
    public void Stores_of_every_width_mark_exactly_the_pages_written()
    {
        _tracker.Enable();
        RunProgram(
            Asm.Sb(5, 10, 1),
            Asm.Sh(5, 10, 2),
            Asm.Sw(5, 11, 4),
            Asm.Sd(5, 11, 8));
        Assert.Equal([PageOf(Data), PageOf(Data + (3 * Page))], Pass());
    }

    [Fact]
    public void Nothing_is_marked_while_the_log_is_off()
    {
        RunProgram(Asm.Sd(5, 10, 0), Asm.AmoaddD(0, 11, 5));
        Assert.Empty(DirtyPages.Take(_h.Ram.DirtyPages, _set));
        Assert.Throws<InvalidOperationException>(() => _tracker.CollectPass(_set));
    }

    [Fact]
    public void A_misaligned_store_across_a_page_boundary_marks_both_pages()
    {
        _tracker.Enable();
        RunProgram(Asm.Sd(5, 11, -4)); // 4 bytes at the end of page 2, 4 at the start of page 3
        Assert.Equal([PageOf(Data + (2 * Page)), PageOf(Data + (3 * Page))], Pass());
        Assert.Equal(0x1234_5678_9ABC_DEF0UL, _h.Peek64(Data + (3 * Page) - 4));
    }

    [Fact]
    public void Amo_and_sc_mark_their_pages()
    {
        _tracker.Enable();
        RunProgram(
            Asm.AmoaddD(0, 10, 5),
            Asm.LrD(6, 11),
            Asm.ScD(7, 11, 5));
        Assert.Equal(0UL, _h.X(7)); // the SC stored
        Assert.Equal([PageOf(Data), PageOf(Data + (3 * Page))], Pass());
    }

    [Fact]
    public void Fp_stores_mark_their_pages()
    {
        _h.EnableFp();
        _h.SetF(1, 0x4000_0000_0000_0000);
        _tracker.Enable();
        RunProgram(
            Asm.Fsw(1, 10, 0),
            Asm.Fsd(1, 11, 8));
        Assert.Equal([PageOf(Data), PageOf(Data + (3 * Page))], Pass());
    }

    [Fact]
    public void A_store_to_a_code_page_marks_it()
    {
        _tracker.Enable();
        _h.Write(Base, Asm.Sd(5, 12, 0), Asm.Halt);
        _h.SetX(12, Base + 0x800); // the program's own page: decoded code there, so no write-TLB entry
        _h.Run(10);
        _h.AssertHaltedAt(Base + 4);
        Assert.Equal([PageOf(Base)], Pass());
    }

    [Fact]
    public void A_page_written_again_after_a_pass_is_marked_again()
    {
        _tracker.Enable();
        RunProgram(Asm.Sd(5, 10, 0), Asm.Sd(5, 10, 8)); // the second store hits the write TLB
        Assert.Equal([PageOf(Data)], Pass());
        Assert.Empty(Pass());

        // Same page, same hart, its write-TLB entry would still be there: the pass must have dropped it.
        RunProgram(Asm.Sd(5, 10, 16));
        Assert.Equal([PageOf(Data)], Pass());
    }

    [Fact]
    public void Enable_drops_write_TLB_entries_filled_while_the_log_was_off()
    {
        RunProgram(Asm.Sd(5, 10, 0)); // fills the write TLB, unmarked
        _tracker.Enable();
        RunProgram(Asm.Sd(5, 10, 8));
        Assert.Equal([PageOf(Data)], Pass());
    }

    [Fact]
    public void An_amo_through_the_write_TLB_after_a_pass_is_marked_again()
    {
        _tracker.Enable();
        RunProgram(Asm.AmoaddD(0, 10, 5), Asm.AmoaddD(0, 10, 5));
        Assert.Equal([PageOf(Data)], Pass());
        RunProgram(Asm.AmoaddD(0, 10, 5));
        Assert.Equal([PageOf(Data)], Pass());
    }

    [Fact]
    public void The_page_walkers_A_and_D_updates_mark_the_page_table_page()
    {
        var pt = new PageTables(_h, levels: 3);
        pt.IdentityMapRam();
        const ulong va = 0x4000_0000; // outside the RAM gigapage
        ulong pte = pt.Map(va, Data, V | R | W); // A and D clear: the walker sets them
        _h.WriteCsr(Csr.Satp, pt.Satp);
        _h.Write(Base, Asm.Ld(3, 10, 0), Asm.Halt);
        _h.SetX(10, va);
        _h.StartIn(PrivilegeMode.Supervisor, Base);
        _tracker.Enable();
        _h.Run(10);

        _h.AssertHaltedAt(Base + 4);
        Assert.Equal(A, pt.ReadPte(va, 0) & (A | D));
        Assert.Equal([PageOf(pte)], Pass()); // a load: only the PTE's page was written

        _h.Write(Base, Asm.Sd(3, 10, 0), Asm.Halt);
        _h.Hart.SetPrivilege(PrivilegeMode.Machine); // back from S-mode's halt, to mret into it again
        _h.StartIn(PrivilegeMode.Supervisor, Base);
        _h.Run(10);
        _h.AssertHaltedAt(Base + 4);
        Assert.Equal(A | D, pt.ReadPte(va, 0) & (A | D));
        Assert.Equal([PageOf(Data), PageOf(pte)], Pass());
    }
}
