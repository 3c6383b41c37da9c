using HostVM.Machine.Memory;

namespace HostVM.Machine.Tests.Memory;

/// <summary>The log on its own: which pages a mark sets, that it is inert when off, and that a take clears.</summary>
public sealed class DirtyPageLogTests : IDisposable
{
    private const ulong Base = GuestRam.DefaultBase;
    private const ulong Page = GuestRam.PageSize;

    private readonly GuestRam _ram = new(1 << 20);
    private readonly DirtyPageSet _set;

    public DirtyPageLogTests() => _set = new DirtyPageSet(_ram.DirtyPages.PageCount);

    private DirtyPageLog Log => _ram.DirtyPages;

    public void Dispose() => _ram.Dispose();

    private int[] Take() => DirtyPages.Take(Log, _set);

    [Fact]
    public void One_bit_per_4_KiB_page_of_RAM()
    {
        Assert.Equal(256, Log.PageCount);
        Assert.False(Log.Enabled);
    }

    [Fact]
    public void Nothing_is_marked_while_the_log_is_off()
    {
        Log.Mark(Base + (3 * Page));
        Log.MarkRange(Base, 16 * Page);
        Assert.Empty(Take());
    }

    [Fact]
    public void Mark_sets_the_page_of_the_address_and_take_clears_it()
    {
        Log.Enable();
        Log.Mark(Base + (3 * Page) + 17);
        Log.Mark(Base + (200 * Page));
        Log.Mark(Base + (255 * Page) + Page - 1);
        Assert.Equal([3, 200, 255], Take());
        Assert.Empty(Take());
        Log.Mark(Base + (3 * Page));
        Assert.Equal([3], Take());
    }

    [Fact]
    public void MarkRange_sets_every_page_the_range_touches_and_no_other()
    {
        Log.Enable();
        Log.MarkRange(Base + (5 * Page) - 1, 2);             // the last byte of page 4, the first of 5
        Log.MarkRange(Base + (64 * Page), (2 * Page) + 1);    // 64, 65 and one byte of 66 (across a word)
        Log.MarkRange(Base + (100 * Page), 0);                // nothing
        Assert.Equal([4, 5, 64, 65, 66], Take());
    }

    [Fact]
    public void Addresses_outside_RAM_are_ignored_and_a_range_is_clamped_to_RAM()
    {
        Log.Enable();
        Log.Mark(Base - 1);
        Log.Mark(Base + (256 * Page));
        Log.Mark(0);
        Log.MarkRange(Base + (254 * Page), ulong.MaxValue);   // wraps: clamped, does not walk 2^52 pages
        Log.MarkRange(Base - Page, Page + 1);                 // starts below RAM, ends in page 0
        Assert.Equal([0, 254, 255], Take());
    }

    [Fact]
    public void Enable_starts_a_fresh_log_and_Disable_stops_marking()
    {
        Log.Enable();
        Log.Mark(Base + Page);
        Log.Enable();
        Assert.Empty(Take());
        Log.Mark(Base + (2 * Page));
        Log.Disable();
        Log.Mark(Base + (7 * Page));
        Assert.Equal([2], Take());
    }

    [Fact]
    public void A_set_of_another_size_is_refused()
    {
        Assert.Throws<ArgumentException>(() => Log.TakeInto(new DirtyPageSet(255)));
    }

    [Fact]
    public void Marks_made_on_many_threads_while_takes_run_are_all_taken()
    {
        Log.Enable();
        var seen = new int[Log.PageCount];
        using var done = new CountdownEvent(4);
        for (int t = 0; t < 4; t++)
        {
            int first = t * 64;
            new Thread(() =>
            {
                for (int round = 0; round < 2000; round++)
                {
                    Log.Mark(Base + ((ulong)(first + (round % 64)) * Page));
                }

                done.Signal();
            }).Start();
        }

        while (!done.IsSet)
        {
            foreach (int p in Take())
            {
                seen[p]++;
            }
        }

        foreach (int p in Take())
        {
            seen[p]++;
        }

        // Every page was marked; none is lost between a take and a concurrent mark.
        Assert.All(seen, count => Assert.True(count >= 1));
    }
}
