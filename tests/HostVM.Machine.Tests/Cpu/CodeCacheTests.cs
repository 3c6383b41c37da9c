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
}
