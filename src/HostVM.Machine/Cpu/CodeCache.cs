using System.Runtime.CompilerServices;
using HostVM.Machine.Memory;

namespace HostVM.Machine.Cpu;

/// <summary>
/// Decoded blocks of guest code, per physical RAM page, shared by all harts. A page that holds
/// decoded code gets no write-TLB entry in any hart (its <see cref="IsCodePage"/> flag is set), so
/// every store to it takes the slow path and drops the page's blocks first.
/// </summary>
public sealed class CodeCache
{
    private const int SlotsPerPage = (int)(GuestRam.PageSize / 2);

    private readonly DecodedBlock?[]?[] _pages;
    private readonly int[] _codePageFlags;
    private readonly ulong _ramBase;
    private readonly List<Action<ulong>> _writeProtectors = [];

    public CodeCache(GuestRam ram)
    {
        _ramBase = ram.BaseAddress;
        int pages = checked((int)(ram.Size / GuestRam.PageSize));
        _pages = new DecodedBlock?[]?[pages];
        _codePageFlags = new int[pages];
    }

    /// <summary>Blocks decoded so far (a statistic).</summary>
    public long BlocksDecoded { get; private set; }

    /// <summary>Pages whose code was dropped because something wrote to them (a statistic).</summary>
    public long PagesInvalidated { get; private set; }

    /// <summary>
    /// Registers a hart's hook that removes its write-TLB entries for a physical page; called when a
    /// page first receives decoded code.
    /// </summary>
    public void AddWriteProtector(Action<ulong> dropWriteMappings)
    {
        lock (_writeProtectors)
        {
            _writeProtectors.Add(dropWriteMappings);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public DecodedBlock? Lookup(ulong physicalAddress)
    {
        ulong offset = physicalAddress - _ramBase;
        var page = _pages[offset >> 12];
        return page?[(offset & 0xfff) >> 1];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsCodePage(ulong physicalAddress) =>
        Volatile.Read(ref _codePageFlags[(physicalAddress - _ramBase) >> 12]) != 0;

    public void Insert(ulong physicalAddress, DecodedBlock block)
    {
        ulong offset = physicalAddress - _ramBase;
        int pageIndex = (int)(offset >> 12);
        var page = Volatile.Read(ref _pages[pageIndex]);
        if (page is null)
        {
            page = new DecodedBlock?[SlotsPerPage];
            // Publish the flag first, then remove write mappings: a hart filling its write TLB
            // re-checks the flag after the fill (see Hart), so no stale writable mapping survives.
            Interlocked.Exchange(ref _codePageFlags[pageIndex], 1);
            ulong pageAddress = physicalAddress & ~(GuestRam.PageSize - 1);
            lock (_writeProtectors)
            {
                foreach (var protect in _writeProtectors)
                {
                    protect(pageAddress);
                }
            }

            page = Interlocked.CompareExchange(ref _pages[pageIndex], page, null) ?? page;
        }

        page[(offset & 0xfff) >> 1] = block;
        BlocksDecoded++;
    }

    /// <summary>Drops every block decoded from the page holding <paramref name="physicalAddress"/>.</summary>
    public void InvalidatePage(ulong physicalAddress)
    {
        ulong offset = physicalAddress - _ramBase;
        if (offset >= (ulong)_pages.Length * GuestRam.PageSize)
        {
            return;
        }

        int pageIndex = (int)(offset >> 12);
        if (Interlocked.Exchange(ref _codePageFlags[pageIndex], 0) != 0)
        {
            var page = Interlocked.Exchange(ref _pages[pageIndex], null);
            if (page is not null)
            {
                foreach (var block in page)
                {
                    if (block is not null)
                    {
                        block.Invalidated = true;
                    }
                }
            }

            PagesInvalidated++;
        }
    }

    /// <summary>Drops code on every page touched by a write of <paramref name="length"/> bytes (device DMA, loaders).</summary>
    public void InvalidateRange(ulong physicalAddress, ulong length)
    {
        if (length == 0)
        {
            return;
        }

        for (ulong p = physicalAddress & ~0xfffUL; p < physicalAddress + length; p += GuestRam.PageSize)
        {
            InvalidatePage(p);
        }
    }

    /// <summary>Drops all decoded code (fence.i is cheap without this; used on reset and restore).</summary>
    public void Clear()
    {
        for (int i = 0; i < _pages.Length; i++)
        {
            InvalidatePage(_ramBase + ((ulong)i * GuestRam.PageSize));
        }
    }
}
