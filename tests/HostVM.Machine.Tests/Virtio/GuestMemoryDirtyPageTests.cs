using HostVM.Machine.Cpu;
using HostVM.Machine.Memory;
using HostVM.Machine.Tests.Memory;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>Devices' writes to guest RAM (DMA) mark the dirty-page log, exactly the pages written, and only while it is on.</summary>
public sealed class GuestMemoryDirtyPageTests : IDisposable
{
    private const ulong Base = GuestRam.DefaultBase;
    private const ulong Page = GuestRam.PageSize;

    private readonly GuestRam _ram = new(1 << 20);
    private readonly GuestMemory _memory;
    private readonly DirtyPageSet _set;

    public GuestMemoryDirtyPageTests()
    {
        _memory = new GuestMemory(_ram, new CodeCache(_ram));
        _set = new DirtyPageSet(_ram.DirtyPages.PageCount);
    }

    public void Dispose() => _ram.Dispose();

    private int[] Take() => DirtyPages.Take(_ram.DirtyPages, _set);

    [Fact]
    public void A_write_marks_exactly_the_pages_it_touches()
    {
        _ram.DirtyPages.Enable();
        Assert.True(_memory.TryWrite(Base + (8 * Page) - 2, new byte[Page + 4])); // end of 7, all of 8, start of 9
        Assert.True(_memory.TryWrite(Base + (20 * Page) + 100, [1, 2, 3]));
        Assert.Equal([7, 8, 9, 20], Take());
    }

    [Fact]
    public void A_refused_write_marks_nothing()
    {
        _ram.DirtyPages.Enable();
        Assert.False(_memory.TryWrite(Base + (1 << 20) - 2, new byte[4])); // runs past the end of RAM
        Assert.Empty(Take());
    }

    [Fact]
    public void Nothing_is_marked_while_the_log_is_off()
    {
        Assert.True(_memory.TryWrite(Base, new byte[3 * Page]));
        Assert.True(_memory.DiscardPage(Base + (5 * Page)));
        Assert.Empty(Take());
    }

    [Fact]
    public void A_page_given_back_by_the_balloon_is_marked_it_reads_as_zero_now()
    {
        _ram.DirtyPages.Enable();
        Assert.True(_memory.DiscardPage(Base + (5 * Page)));
        Assert.Equal([5], Take());
    }
}
