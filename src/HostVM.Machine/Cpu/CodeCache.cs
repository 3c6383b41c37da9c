using System.Runtime.CompilerServices;
using HostVM.Machine.Memory;

namespace HostVM.Machine.Cpu;

/// <summary>
/// Decoded blocks of guest code, per physical RAM page, shared by all harts. A page that holds
/// decoded code gets no write-TLB entry in any hart (its <see cref="IsCodePage"/> flag is set), so
/// every store to it takes the slow path and drops the page's blocks first.
/// The host memory it holds is counted and bounded: past <see cref="BudgetBytes"/> everything is
/// dropped at once (as QEMU flushes its translation buffer when it is full), and what runs is decoded
/// again. Each block may start at any 2-byte offset, so without the bound a hostile guest could make
/// the cache hundreds of times the size of its RAM. Lookups take no lock; inserting and dropping
/// (rare next to lookups: once per decoded block, once per store to a code page) take one, which
/// keeps the count exact.
/// </summary>
public sealed class CodeCache
{
    /// <summary>64 MiB: a Linux guest's hot kernel and user code takes a few MiB decoded.</summary>
    public const long DefaultBudgetBytes = 64L << 20;

    // A page's slots (one per 2-byte offset) come in chunks of 64, made when a block first starts in
    // them: a guest's code page usually has blocks in a few places only, and a flat 2,048-slot array
    // per page (16 KiB) made most of an idle VM's decoded-code memory.
    private const int ChunkShift = 6;
    private const int SlotsPerChunk = 1 << ChunkShift;
    private const int ChunksPerPage = (int)(GuestRam.PageSize / 2) / SlotsPerChunk;

    // What the counted allocations take on a 64-bit host: a page's chunk array, a chunk, and a block's
    // object and instruction array (DecodedInsn is 16 bytes; arrays and objects carry about 24 bytes of header).
    private const long PageBytes = 24 + (ChunksPerPage * 8L);
    private const long ChunkBytes = 24 + (SlotsPerChunk * 8L);
    private const long BlockBytes = 24 + 24;
    private const long InstructionBytes = 16;

    private readonly DecodedBlock?[]?[]?[] _pages;
    private readonly int[] _codePageFlags;
    private readonly ulong _ramBase;
    private readonly List<Action<ulong>> _writeProtectors = [];
    private readonly Lock _mutate = new();
    private long _bytes;

    public CodeCache(GuestRam ram, long budgetBytes = DefaultBudgetBytes)
    {
        ArgumentNullException.ThrowIfNull(ram);
        ArgumentOutOfRangeException.ThrowIfLessThan(budgetBytes, (PageBytes + ChunkBytes) * 4);
        BudgetBytes = budgetBytes;
        _ramBase = ram.BaseAddress;
        int pages = checked((int)(ram.Size / GuestRam.PageSize));
        _pages = new DecodedBlock?[]?[]?[pages];
        _codePageFlags = new int[pages];
    }

    /// <summary>The most host memory the decoded code may hold.</summary>
    public long BudgetBytes { get; }

    /// <summary>Host memory the decoded code holds now (slot arrays, blocks and their instructions).</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>The most <see cref="Bytes"/> has been (a statistic).</summary>
    public long PeakBytes { get; private set; }

    /// <summary>Times the whole cache was dropped for going over its budget (a statistic).</summary>
    public long BudgetFlushes { get; private set; }

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
        int slot = (int)(offset & 0xfff) >> 1;
        return _pages[offset >> 12]?[slot >> ChunkShift]?[slot & (SlotsPerChunk - 1)];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsCodePage(ulong physicalAddress) =>
        Volatile.Read(ref _codePageFlags[(physicalAddress - _ramBase) >> 12]) != 0;

    public void Insert(ulong physicalAddress, DecodedBlock block)
    {
        ArgumentNullException.ThrowIfNull(block);
        ulong offset = physicalAddress - _ramBase;
        int pageIndex = (int)(offset >> 12);
        lock (_mutate)
        {
            if (_bytes + CostOf(block) + PageBytes + ChunkBytes > BudgetBytes)
            {
                BudgetFlushes++;
                for (int i = 0; i < _pages.Length; i++)
                {
                    DropLocked(i);
                }
            }

            var page = _pages[pageIndex];
            if (page is null)
            {
                page = new DecodedBlock?[]?[ChunksPerPage];
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

                Volatile.Write(ref _pages[pageIndex], page);
                _bytes += PageBytes;
            }

            int index = (int)(offset & 0xfff) >> 1;
            var chunk = page[index >> ChunkShift];
            if (chunk is null)
            {
                chunk = new DecodedBlock?[SlotsPerChunk];
                Volatile.Write(ref page[index >> ChunkShift], chunk);
                _bytes += ChunkBytes;
            }

            ref var slot = ref chunk[index & (SlotsPerChunk - 1)];
            _bytes += CostOf(block) - (slot is null ? 0 : CostOf(slot));
            Volatile.Write(ref slot, block);
            PeakBytes = Math.Max(PeakBytes, _bytes);
            BlocksDecoded++;
        }
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
        if (Volatile.Read(ref _codePageFlags[pageIndex]) == 0)
        {
            return; // no code there: the common case of a store, without the lock
        }

        lock (_mutate)
        {
            DropLocked(pageIndex);
        }
    }

    private void DropLocked(int pageIndex)
    {
        if (Interlocked.Exchange(ref _codePageFlags[pageIndex], 0) == 0)
        {
            return;
        }

        var page = Interlocked.Exchange(ref _pages[pageIndex], null);
        if (page is not null)
        {
            _bytes -= PageBytes;
            foreach (var chunk in page)
            {
                if (chunk is null)
                {
                    continue;
                }

                _bytes -= ChunkBytes;
                foreach (var block in chunk)
                {
                    if (block is not null)
                    {
                        block.Invalidated = true;
                        _bytes -= CostOf(block);
                    }
                }
            }
        }

        PagesInvalidated++;
    }

    private static long CostOf(DecodedBlock block) => BlockBytes + (block.Instructions.Length * InstructionBytes);

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
