using System.Runtime.CompilerServices;
using HostVM.Machine.Cpu;
using HostVM.Machine.Memory;

namespace HostVM.Machine.Virtio;

/// <summary>
/// A device's view of guest RAM (DMA). Every range is checked against RAM before it is touched, and
/// every write, once its bytes are in RAM, drops decoded code on the pages it hit (so a guest that DMAs
/// over its own code runs the new code) and marks them in the dirty-page log. Addresses come from the
/// guest and are never trusted.
/// </summary>
public sealed unsafe class GuestMemory
{
    private readonly GuestRam _ram;
    private readonly CodeCache? _code;

    public GuestMemory(GuestRam ram, CodeCache? code)
    {
        _ram = ram;
        _code = code;
    }

    public GuestRam Ram => _ram;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Contains(ulong address, ulong length) => _ram.Contains(address, length);

    /// <summary>A span over guest RAM for reading, or false when any byte is outside RAM.</summary>
    public bool TryGetReadable(ulong address, uint length, out Span<byte> span)
    {
        byte* p = _ram.HostPointer(address, length);
        if (p == null)
        {
            span = default;
            return false;
        }

        span = new Span<byte>(p, (int)length);
        return true;
    }

    /// <summary>A span over guest RAM the caller writes, then reports with <see cref="WroteRange"/>.</summary>
    internal bool TryGetWritable(ulong address, uint length, out Span<byte> span) => TryGetReadable(address, length, out span);

    public bool TryRead(ulong address, Span<byte> destination)
    {
        if (!TryGetReadable(address, (uint)destination.Length, out var span))
        {
            return false;
        }

        span.CopyTo(destination);
        return true;
    }

    public bool TryWrite(ulong address, ReadOnlySpan<byte> source)
    {
        if (!TryGetWritable(address, (uint)source.Length, out var span))
        {
            return false;
        }

        source.CopyTo(span);
        WroteRange(address, (ulong)source.Length);
        return true;
    }

    /// <summary>Host pointer of a range already checked with <see cref="Contains"/> (rings, validated once).</summary>
    internal byte* Pointer(ulong address) => _ram.Pointer + (address - _ram.BaseAddress);

    /// <summary>
    /// After a device wrote [address, address + length): drops decoded code there and marks the pages
    /// dirty. Called after the bytes are in RAM, never before: a dirty-log pass between a mark and the
    /// write could take the mark and copy the old bytes, and the write would be lost to the copy. (For
    /// code the order matters too: a hart that decodes the page between a drop and the write would keep
    /// the old code.)
    /// </summary>
    internal void WroteRange(ulong address, ulong length)
    {
        _code?.InvalidateRange(address, length);
        _ram.DirtyPages.MarkRange(address, length);
    }

    /// <summary>Gives the host pages back (balloon): they read as zero afterwards. Pages outside RAM are ignored.</summary>
    public bool DiscardPage(ulong address)
    {
        if ((address & (GuestRam.PageSize - 1)) != 0 || !_ram.Contains(address, GuestRam.PageSize))
        {
            return false;
        }

        _code?.InvalidatePage(address);
        _ram.DiscardPage(address);
        _ram.DirtyPages.MarkRange(address, GuestRam.PageSize); // it reads as zero now: a change to send
        return true;
    }
}
