namespace HostVM.Networking.UserNet;

/// <summary>
/// A fixed-size circular byte buffer. A TCP connection keeps one per direction: the producer
/// fills the free region in place (a socket receive writes straight into it) and the consumer
/// reads the filled region in place (a socket send reads straight out of it), so bulk data is
/// copied once between the guest's frame and the host socket. Not thread-safe: the owner's
/// lock guards Count and Head; the regions handed out stay valid until committed or consumed.
/// The storage is allocated on first write, so connections that never carry data (a guest
/// scanning ports, connects still pending) cost little memory.
/// </summary>
internal sealed class ByteRing(int capacity)
{
    private byte[]? _storage;
    private int _head;

    public int Capacity => capacity;

    public int Count { get; private set; }

    public int Free => capacity - Count;

    private byte[] Storage => _storage ??= new byte[capacity];

    /// <summary>The contiguous free space after the data (may be shorter than <see cref="Free"/> when it wraps).</summary>
    public Memory<byte> WritableRegion()
    {
        int tail = (_head + Count) % Storage.Length;
        int length = tail >= _head && Count < Storage.Length ? Math.Min(Storage.Length - tail, Free) : Free;
        return Storage.AsMemory(tail, length);
    }

    /// <summary>Marks <paramref name="length"/> bytes written into <see cref="WritableRegion"/> as data.</summary>
    public void Commit(int length) => Count += length;

    /// <summary>Copies <paramref name="data"/> in (the caller checked <see cref="Free"/>).</summary>
    public void Write(ReadOnlySpan<byte> data)
    {
        int tail = (_head + Count) % Storage.Length;
        int first = Math.Min(data.Length, Storage.Length - tail);
        data[..first].CopyTo(Storage.AsSpan(tail));
        data[first..].CopyTo(Storage);
        Count += data.Length;
    }

    /// <summary>The contiguous data at the head (may be shorter than <see cref="Count"/> when it wraps).</summary>
    public ReadOnlyMemory<byte> ReadableRegion() => Count == 0 ? ReadOnlyMemory<byte>.Empty : Storage.AsMemory(_head, Math.Min(Count, Storage.Length - _head));

    /// <summary>Copies data starting <paramref name="offset"/> bytes past the head, without consuming it.</summary>
    public void Peek(int offset, Span<byte> destination)
    {
        int start = (_head + offset) % Storage.Length;
        int first = Math.Min(destination.Length, Storage.Length - start);
        Storage.AsSpan(start, first).CopyTo(destination);
        Storage.AsSpan(0, destination.Length - first).CopyTo(destination[first..]);
    }

    /// <summary>Drops <paramref name="length"/> bytes from the head.</summary>
    public void Consume(int length)
    {
        _head = (_head + length) % Storage.Length;
        // The head is not rewound to 0 when the ring empties: a socket receive may be writing
        // into the free region right now, and that region must stay where it was handed out.
        Count -= length;
    }
}
