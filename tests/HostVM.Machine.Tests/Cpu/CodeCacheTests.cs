using HostVM.Machine.Cpu;
using HostVM.Machine.Memory;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>The decoded-block cache: lookup by physical address, code-page flags, invalidation.</summary>
public sealed class CodeCacheTests : IDisposable
{
    private const ulong Base = GuestRam.DefaultBase;
    private readonly GuestRam _ram = new(16 * GuestRam.PageSize);
    private readonly CodeCache _code;
    private readonly List<ulong> _protected = [];

    public CodeCacheTests()
    {
        _code = new CodeCache(_ram);
        _code.AddWriteProtector(_protected.Add);
    }

    private static DecodedBlock Block() => new([Decoder.Decode(Asm.Nop)], 1);

    [Fact]
    public void Inserted_block_is_found_at_its_address_only()
    {
        var block = Block();
        _code.Insert(Base + 0x1004, block);

        Assert.Same(block, _code.Lookup(Base + 0x1004));
        Assert.Null(_code.Lookup(Base + 0x1006));
        Assert.Null(_code.Lookup(Base + 0x2004));
        Assert.True(_code.IsCodePage(Base + 0x1FFF));
        Assert.False(_code.IsCodePage(Base + 0x2000));
    }

    [Fact]
    public void First_block_on_a_page_asks_every_hart_to_drop_write_mappings_once()
    {
        _code.Insert(Base + 0x3000, Block());
        _code.Insert(Base + 0x3010, Block());

        Assert.Equal([Base + 0x3000], _protected);
    }

    [Fact]
    public void Invalidating_a_page_drops_its_blocks_and_its_flag_only()
    {
        _code.Insert(Base + 0x1000, Block());
        _code.Insert(Base + 0x2000, Block());

        _code.InvalidatePage(Base + 0x1ABC);

        Assert.Null(_code.Lookup(Base + 0x1000));
        Assert.False(_code.IsCodePage(Base + 0x1000));
        Assert.NotNull(_code.Lookup(Base + 0x2000));
        Assert.True(_code.IsCodePage(Base + 0x2000));
    }

    [Fact]
    public void Invalidating_a_range_covers_every_page_it_touches()
    {
        _code.Insert(Base + 0x1000, Block());
        _code.Insert(Base + 0x2000, Block());
        _code.Insert(Base + 0x3000, Block());

        _code.InvalidateRange(Base + 0x1FFF, 2);

        Assert.Null(_code.Lookup(Base + 0x1000));
        Assert.Null(_code.Lookup(Base + 0x2000));
        Assert.NotNull(_code.Lookup(Base + 0x3000));
    }

    [Fact]
    public void Invalidating_outside_ram_is_ignored()
    {
        _code.Insert(Base, Block());
        _code.InvalidatePage(0x1000);
        _code.InvalidatePage(Base + (16 * GuestRam.PageSize));
        _code.InvalidateRange(Base, 0);

        Assert.NotNull(_code.Lookup(Base));
    }

    [Fact]
    public void Clear_drops_everything()
    {
        _code.Insert(Base, Block());
        _code.Insert(Base + 0x5000, Block());
        _code.Clear();

        Assert.Null(_code.Lookup(Base));
        Assert.Null(_code.Lookup(Base + 0x5000));
        Assert.False(_code.IsCodePage(Base));
    }

    public void Dispose() => _ram.Dispose();

    [Fact]
    public void The_memory_held_is_counted_and_given_back()
    {
        Assert.Equal(0, _code.Bytes);
        _code.Insert(Base + 0x1000, Block());
        long onePage = _code.Bytes;
        _code.Insert(Base + 0x1002, Block());
        long secondBlock = _code.Bytes - onePage;
        // A page's first block pays for its slots: a few hundred bytes, not a slot per 2-byte offset (16 KiB).
        Assert.True(secondBlock > 0 && onePage > secondBlock && onePage < 2 * 1024, $"page {onePage} B, block {secondBlock} B");
        _code.Insert(Base + 0x1002, Block()); // replacing a block does not add
        Assert.Equal(onePage + secondBlock, _code.Bytes);
        _code.Insert(Base + 0x1ffe, Block()); // the page's last chunk of slots: counted too
        Assert.True(_code.Bytes - onePage - secondBlock > secondBlock, $"{_code.Bytes} B");
        Assert.NotNull(_code.Lookup(Base + 0x1ffe));
        Assert.Null(_code.Lookup(Base + 0x1ffc));

        _code.InvalidatePage(Base + 0x1000);
        Assert.Equal(0, _code.Bytes);
    }

    [Fact]
    public void A_block_at_every_offset_of_every_page_stays_within_the_budget()
    {
        // 16 pages × 2048 starts would hold about 2 MiB; the budget is 256 KiB.
        var small = new CodeCache(_ram, 256 * 1024);
        for (ulong page = 0; page < 16; page++)
        {
            for (ulong offset = 0; offset < GuestRam.PageSize; offset += 2)
            {
                var block = Block();
                small.Insert(Base + (page * GuestRam.PageSize) + offset, block);
                Assert.Same(block, small.Lookup(Base + (page * GuestRam.PageSize) + offset));
            }
        }

        Assert.True(small.PeakBytes <= small.BudgetBytes, $"peak {small.PeakBytes} B over the budget {small.BudgetBytes} B");
        Assert.True(small.BudgetFlushes >= 7, $"{small.BudgetFlushes} flushes");
        Assert.Equal(16 * 2048, small.BlocksDecoded);
    }

    [Fact]
    public void A_guest_that_enters_its_code_at_every_offset_and_rewrites_it_in_a_loop_stays_within_the_budget()
    {
        // 16 KiB of c.jr ra (a one-instruction block at each of 8192 starts), called at every offset,
        // then rewritten (each page stored to, then fence.i), three times over. Unbounded, the cache
        // would hold about 600 KiB; the budget is 128 KiB.
        const ulong Region = TestHart.ProgramBase + 0x4000;
        const int Size = 16 * 1024;
        using var h = new TestHart(codeCacheBytes: 128 * 1024);
        h.WriteHalves(Region, [.. Enumerable.Repeat((ushort)0x8082, Size / 2)]);
        h.Write(TestHart.ProgramBase,
            Asm.Addi(9, 0, 3),           // x9: passes
            Asm.Addi(5, 10, 0),          // pass: x5 = region
            Asm.Jalr(1, 5, 0),           // call: c.jr ra at x5
            Asm.Addi(8, 8, 1),           // x8: calls made
            Asm.Addi(5, 5, 2),
            Asm.Blt(5, 11, -12),
            Asm.Addi(5, 10, 0),          // rewrite: store the same c.jr ra pair on every page
            Asm.Sw(12, 5, 0),
            Asm.Addi(5, 5, 1024),
            Asm.Addi(5, 5, 1024),
            Asm.Addi(5, 5, 1024),
            Asm.Addi(5, 5, 1024),
            Asm.Blt(5, 11, -20),
            Asm.FenceI(),
            Asm.Addi(9, 9, -1),
            Asm.Bne(9, 0, -56),
            Asm.Halt);
        h.SetX(10, Region);
        h.SetX(11, Region + Size);
        h.SetX(12, 0x8082_8082);
        h.Run(500_000);

        h.AssertHaltedAt(TestHart.ProgramBase + (16 * 4));
        Assert.Equal(3UL * (Size / 2), h.X(8));
        Assert.True(h.Code.PeakBytes <= h.Code.BudgetBytes, $"peak {h.Code.PeakBytes} B over the budget {h.Code.BudgetBytes} B");
        Assert.True(h.Code.BudgetFlushes > 0);
        Assert.True(h.Code.PagesInvalidated >= 4, "the stores dropped the pages they hit");
    }
}
