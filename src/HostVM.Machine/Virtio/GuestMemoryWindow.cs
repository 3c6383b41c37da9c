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

    /// <summary>Aims the window at <paramref name="length"/> bytes at a host pointer already checked to lie in guest RAM.</summary>
    internal Memory<byte> Point(byte* pointer, int length)
    {
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
