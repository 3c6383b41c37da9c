using System.Buffers;

namespace HostVM.Machine.Virtio;

/// <summary>
/// A <see cref="Memory{T}"/> over a range of guest RAM, so host I/O (preadv/pwritev through
/// RandomAccess) can go straight to and from guest buffers without a copy. Guest RAM is native and never
/// moves, so pinning is free. Instances are reused by one device thread: <see cref="Point"/> retargets.
/// </summary>
public sealed unsafe class GuestMemoryWindow : MemoryManager<byte>
{
    private byte* _pointer;
    private int _length;

    /// <summary>The guest physical address the window is aimed at (to report a device's write to it).</summary>
    internal ulong GuestAddress { get; private set; }

    internal int Length => _length;

    /// <summary>Aims the window at <paramref name="length"/> bytes of guest RAM at <paramref name="address"/>, already checked, whose host address is <paramref name="pointer"/>.</summary>
    internal Memory<byte> Point(ulong address, byte* pointer, int length)
    {
        GuestAddress = address;
        _pointer = pointer;
        _length = length;
        return Memory;
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);

    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
    }
}
