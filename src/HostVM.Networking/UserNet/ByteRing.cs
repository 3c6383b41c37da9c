namespace HostVM.Networking.UserNet;

/// <summary>
/// A fixed-size circular byte buffer. A TCP connection keeps one per direction: the producer
/// fills the free region in place (a socket receive writes straight into it) and the consumer
/// reads the filled region in place (a socket send reads straight out of it), so bulk data is
/// copied once between the guest's frame and the host socket. Not thread-safe: the owner's
/// lock guards Count and Head; the regions handed out stay valid until committed or consumed.
/// </summary>
internal sealed class ByteRing
{
    private readonly byte[] _buffer;
    private int _head;

    public ByteRing(int capacity) => _buffer = new byte[capacity];

    public int Capacity => _buffer.Length;

    public int Count { get; private set; }

    public int Free => _buffer.Length - Count;

    /// <summary>The contiguous free space after the data (may be shorter than <see cref="Free"/> when it wraps).</summary>
    public Memory<byte> WritableRegion()
    {
        int tail = (_head + Count) % _buffer.Length;
        int length = tail >= _head && Count < _buffer.Length ? Math.Min(_buffer.Length - tail, Free) : Free;
        return _buffer.AsMemory(tail, length);
    }

    /// <summary>Marks <paramref name="length"/> bytes written into <see cref="WritableRegion"/> as data.</summary>
    public void Commit(int length) => Count += length;

    /// <summary>Copies <paramref name="data"/> in (the caller checked <see cref="Free"/>).</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        int tail = (_head + Count) % _buffer.Length;
        int first = Math.Min(data.Length, _buffer.Length - tail);
        data[..first].CopyTo(_buffer.AsSpan(tail));
        data[first..].CopyTo(_buffer);
        Count += data.Length;
    }

    /// <summary>The contiguous data at the head (may be shorter than <see cref="Count"/> when it wraps).</summary>
    public ReadOnlyMemory<byte> ReadableRegion() => _buffer.AsMemory(_head, Math.Min(Count, _buffer.Length - _head));

    /// <summary>Copies data starting <paramref name="offset"/> bytes past the head, without consuming it.</summary>
    public void Peek(int offset, Span<byte> destination)
    {
        int start = (_head + offset) % _buffer.Length;
        int first = Math.Min(destination.Length, _buffer.Length - start);
        _buffer.AsSpan(start, first).CopyTo(destination);
        _buffer.AsSpan(0, destination.Length - first).CopyTo(destination[first..]);
    }

    /// <summary>Drops <paramref name="length"/> bytes from the head.</summary>
    public void Consume(int length)
    {
        _head = (_head + length) % _buffer.Length;
        // The head is not rewound to 0 when the ring empties: a socket receive may be writing
        // into the free region right now, and that region must stay where it was handed out.
        Count -= length;
    }
}
