using System.Runtime.CompilerServices;
using HostVM.Machine.Cpu;
using HostVM.Machine.Memory;

namespace HostVM.Machine.Virtio;

/// <summary>
/// A device's view of guest RAM (DMA). Every range is checked against RAM before it is touched, and
/// every write drops decoded code on the pages it hits, so a guest that DMAs over its own code runs the
/// new code. Addresses come from the guest and are never trusted.
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

    /// <summary>A span over guest RAM the caller will write; code on those pages is dropped first.</summary>
    public bool TryGetWritable(ulong address, uint length, out Span<byte> span)
    {
        if (!TryGetReadable(address, length, out span))
        {
            return false;
        }

        _code?.InvalidateRange(address, length);
        return true;
    }

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
        return true;
    }

    /// <summary>Host pointer of a range already checked with <see cref="Contains"/> (rings, validated once).</summary>
    internal byte* Pointer(ulong address) => _ram.Pointer + (address - _ram.BaseAddress);

    internal void WroteRange(ulong address, ulong length) => _code?.InvalidateRange(address, length);

    /// <summary>Gives the host pages back (balloon): they read as zero afterwards. Pages outside RAM are ignored.</summary>
    public bool DiscardPage(ulong address)
    {
        if ((address & (GuestRam.PageSize - 1)) != 0 || !_ram.Contains(address, GuestRam.PageSize))
        {
            return false;
        }

        _code?.InvalidatePage(address);
        HostMemory.Discard(Pointer(address), GuestRam.PageSize);
        return true;
    }
}
