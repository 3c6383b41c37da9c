using System.Runtime.CompilerServices;

namespace HostVM.Machine.Memory;

/// <summary>
/// One bit per 4 KiB page of guest RAM, set when something writes the page while the log is on (live
/// migration's pre-copy passes, diff snapshots). Marking is lock-free (<see cref="Interlocked.Or(ref ulong, ulong)"/>)
/// from any thread; <see cref="TakeInto"/> exchanges each word with zero, so a mark is returned by exactly
/// one take, this one or the next.
/// <para>
/// The log alone cannot see stores through a hart's write TLB: those never leave the fast path. What
/// makes it complete is the protocol <see cref="HostVM.Machine.DirtyPageTracker"/> runs with the harts (a write-TLB
/// entry exists only for a page marked when it was filled; a pass drops those entries) and one rule
/// for devices: mark after the bytes are written, never before (see <see cref="MarkRange"/>).
/// </para>
/// </summary>
public sealed class DirtyPageLog
{
    private const int PageShift = 12;

    private readonly ulong[] _words;
    private readonly ulong _base;
    private readonly ulong _size;
    private volatile bool _enabled;

    public DirtyPageLog(ulong baseAddress, ulong size)
    {
        _base = baseAddress;
        _size = size;
        PageCount = checked((int)(size >> PageShift));
        _words = new ulong[(PageCount + 63) / 64];
    }

    /// <summary>Pages of RAM the log covers: page <c>i</c> is RAM offset <c>i * 4096</c>.</summary>
    public int PageCount { get; }

    /// <summary>While false, <see cref="Mark"/> and <see cref="MarkRange"/> do nothing (one field test).</summary>
    public bool Enabled => _enabled;

    /// <summary>
    /// Starts a fresh log: clears every bit, then turns marking on. Harts' write-TLB entries filled while
    /// it was off are unmarked, so the caller must then drop them (<see cref="HostVM.Machine.DirtyPageTracker.Enable"/> does).
    /// </summary>
    internal void Enable()
    {
        Array.Clear(_words);
        _enabled = true;
        // Store-load fence: a device that reads Enabled after this sees true, or wrote before we got here.
        Interlocked.MemoryBarrier();
    }

    internal void Disable() => _enabled = false;

    /// <summary>Marks the page holding <paramref name="physicalAddress"/>, if the log is on and it is RAM.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Mark(ulong physicalAddress)
    {
        if (_enabled)
        {
            MarkPage(physicalAddress);
        }
    }

    /// <summary>
    /// Marks every page [address, address + length) touches, if the log is on. Devices call it AFTER the
    /// bytes are in RAM: marked first, a pass could take the mark and copy the page before the write
    /// lands, and the write would be lost to the copy.
    /// </summary>
    public void MarkRange(ulong address, ulong length)
    {
        // A device is not part of the harts' handshake: this fence orders its write before the read of
        // the flag, so a write that finds the log off happened before Enable (and the caller's full copy).
        Interlocked.MemoryBarrier();
        if (!_enabled || length == 0)
        {
            return;
        }

        // Clamped to RAM first: a range past its end (or one that wraps) must not walk 2^52 pages.
        ulong first = Math.Max(address, _base);
        ulong last = address + length - 1 < address ? ulong.MaxValue : address + length - 1;
        last = Math.Min(last, _base + _size - 1);
        for (ulong p = first & ~(GuestRam.PageSize - 1); p <= last; p += GuestRam.PageSize)
        {
            MarkPage(p);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void MarkPage(ulong physicalAddress)
    {
        ulong offset = physicalAddress - _base;
        if (offset >= _size)
        {
            return;
        }

        ulong page = offset >> PageShift;
        ref ulong word = ref _words[page >> 6];
        ulong bit = 1UL << (int)(page & 63);
        // Already set: skip the locked instruction (and the cache line's ownership) on a hot page.
        if ((Volatile.Read(ref word) & bit) == 0)
        {
            Interlocked.Or(ref word, bit);
        }
    }

    /// <summary>
    /// Takes the marks: each word is exchanged with zero (atomically, so a concurrent mark lands either in
    /// what is taken or in the log for the next take, never in neither) and written to
    /// <paramref name="destination"/>, which it overwrites. Allocates nothing.
    /// </summary>
    public void TakeInto(DirtyPageSet destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        if (destination.PageCount != PageCount)
        {
            throw new ArgumentException($"The set holds {destination.PageCount} pages; the log has {PageCount}.", nameof(destination));
        }

        ulong[] into = destination.Words;
        for (int i = 0; i < _words.Length; i++)
        {
            // A clean word is left alone: reading zero and skipping it loses nothing (a mark after the
            // read is in the log for the next take) and does not write every cache line of the bitmap.
            into[i] = Volatile.Read(ref _words[i]) == 0 ? 0 : Interlocked.Exchange(ref _words[i], 0);
        }
    }
}
