using HostVM.Machine.Cpu;
using static HostVM.Machine.Tests.Cpu.PageTables;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Stores into code that has already been decoded: after the store and a FENCE.I (which the
/// unprivileged spec requires before a hart may rely on fetching what it stored), the new
/// instruction must run, whether the code is in the same block, on another page, reached through
/// another virtual alias, written by an AMO or by another hart.
/// </summary>
public class SelfModifyingCodeTests
{
    private const ulong Base = TestHart.ProgramBase;
    private static readonly uint AddOne = Asm.Addi(5, 5, 1);
    private static readonly uint AddHundred = Asm.Addi(5, 5, 100);

    [Fact]
    public void Store_over_an_executed_instruction_in_the_same_block_takes_effect_next_time()
    {
        using var h = new TestHart();
        h.Write(Base,
            AddOne,                     // overwritten on the first pass
            Asm.Sw(6, 10, 0),
            Asm.FenceI(),
            Asm.Addi(7, 7, -1),
            Asm.Bne(7, 0, -16),
            Asm.Halt);
        h.SetX(6, AddHundred);
        h.SetX(7, 2);
        h.SetX(10, Base);
        h.Run(50);

        h.AssertHaltedAt(Base + 20);
        Assert.Equal(101UL, h.X(5));
    }

    [Fact]
    public void Store_into_an_already_decoded_block_takes_effect_when_it_runs_again()
    {
        using var h = new TestHart();
        h.Write(Base,
            Asm.Sw(6, 10, 12),          // patch the instruction at +12 with x6
            Asm.FenceI(),
            Asm.Nop,
            AddOne,                     // +12
            Asm.Halt);
        h.SetX(6, AddOne);              // first pass: no change
        h.SetX(10, Base);
        h.Run(20);
        h.AssertHaltedAt(Base + 16);
        Assert.Equal(1UL, h.X(5));

        h.SetX(6, AddHundred);
        h.Hart.Pc = Base;
        h.Run(20);
        h.AssertHaltedAt(Base + 16);
        Assert.Equal(101UL, h.X(5));
    }

    [Fact]
    public void Store_into_code_on_another_page_takes_effect()
    {
        using var h = new TestHart();
        const ulong function = Base + 0x2000;
        h.Write(function, AddOne, Asm.Jalr(0, 1, 0));
        h.Write(Base,
            Asm.Jal(1, 0x2000),         // call
            Asm.Sw(6, 11, 0),           // patch the function's first instruction
            Asm.FenceI(),
            Asm.Jal(1, 0x2000 - 12),    // call again
            Asm.Halt);
        h.SetX(6, AddHundred);
        h.SetX(11, function);
        h.Run(50);

        h.AssertHaltedAt(Base + 16);
        Assert.Equal(101UL, h.X(5));
    }

    [Fact]
    public void Amo_into_executed_code_takes_effect()
    {
        using var h = new TestHart();
        const ulong function = Base + 0x2000;
        h.Write(function, AddOne, Asm.Jalr(0, 1, 0));
        h.Write(Base,
            Asm.Jal(1, 0x2000),
            Asm.Amo(Asm.AmoSwap, false, 0, 11, 6),
            Asm.FenceI(),
            Asm.Jal(1, 0x2000 - 12),
            Asm.Halt);
        h.SetX(6, AddHundred);
        h.SetX(11, function);
        h.Run(50);

        h.AssertHaltedAt(Base + 16);
        Assert.Equal(101UL, h.X(5));
    }

    [Fact]
    public void Store_through_another_virtual_alias_of_the_code_page_takes_effect()
    {
        using var h = new TestHart();
        var pt = new PageTables(h, 3);
        pt.IdentityMapRam();
        const ulong alias = 0x4000_0000;
        pt.Map(alias, Base, V | R | W | A | D);       // a writable, non-executable alias of the code page
        h.WriteCsr(Csr.Satp, pt.Satp);
        h.Write(Base,
            Asm.Jal(1, 0x100),
            Asm.Sw(6, 11, 0x100),       // write through the alias
            Asm.FenceI(),
            Asm.Jal(1, 0x100 - 12),
            Asm.Halt);
        h.Write(Base + 0x100, AddOne, Asm.Jalr(0, 1, 0));
        h.SetX(6, AddHundred);
        h.SetX(11, alias);
        h.StartIn(PrivilegeMode.Supervisor, Base);
        h.Run(50);

        h.AssertHaltedAt(Base + 16);
        Assert.Equal(101UL, h.X(5));
    }

    [Fact]
    public void Code_written_by_another_hart_runs_after_fence_i()
    {
        using var h = new TestHart();
        using var writer = new Hart(1, h.Bus, h.Code, h.Clock);
        const ulong writerCode = Base + 0x4000;
        h.Write(Base, Asm.FenceI(), AddOne, Asm.Halt);
        h.Write(writerCode, Asm.Sw(6, 10, 4), Asm.Halt);
        h.Run(10);
        h.AssertHaltedAt(Base + 8);

        writer.Pc = writerCode;
        writer.SetX(6, AddHundred);
        writer.SetX(10, Base);
        writer.Run(10);
        Assert.Equal(writerCode + 4, writer.Pc);

        h.Hart.Pc = Base;
        h.Run(10);
        h.AssertHaltedAt(Base + 8);
        Assert.Equal(101UL, h.X(5));
    }

    [Fact]
    public void Host_write_becomes_visible_after_code_cache_invalidation()
    {
        using var h = new TestHart();
        h.Write(Base, AddOne, Asm.Halt);
        h.Run(10);
        Assert.Equal(1UL, h.X(5));

        h.Ram.WriteUInt32(Base, AddHundred);        // like a device's DMA: RAM only
        h.Code.InvalidateRange(Base, 4);
        h.Hart.Pc = Base;
        h.Run(10);

        h.AssertHaltedAt(Base + 4);
        Assert.Equal(101UL, h.X(5));
    }

    [Fact]
    public void Host_write_becomes_visible_after_code_cache_clear()
    {
        using var h = new TestHart();
        h.Write(Base + 0x3000, AddOne, Asm.Halt);
        h.Hart.Pc = Base + 0x3000;
        h.Run(10);

        h.Ram.WriteUInt32(Base + 0x3000, AddHundred);
        h.Code.Clear();
        h.Hart.Pc = Base + 0x3000;
        h.Run(10);

        Assert.Equal(101UL, h.X(5));
    }
}
