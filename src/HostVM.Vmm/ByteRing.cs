namespace HostVM.Vmm;

/// <summary>
/// The last <see cref="Capacity"/> bytes of a stream (a console's output), so a client that attaches
/// late sees what came before. Not thread-safe: the owner holds its own lock around it.
/// </summary>
public sealed class ByteRing
{
    private readonly byte[] _buffer;

    public ByteRing(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        _buffer = new byte[capacity];
    }

    public int Capacity => _buffer.Length;

    /// <summary>Every byte ever written (the stream position of the next byte).</summary>
    public long Written { get; private set; }

    /// <summary>How many bytes are kept (at most <see cref="Capacity"/>).</summary>
    public int Count => (int)Math.Min(Written, _buffer.Length);

    public void Write(ReadOnlySpan<byte> data)
    {
        Written += data.Length;
        if (data.Length >= _buffer.Length)
        {
            // Only the end survives; its first byte (stream position Written - Capacity) belongs at Written % Capacity.
            var kept = data[^_buffer.Length..];
            int s = (int)(Written % _buffer.Length);
            kept[..(_buffer.Length - s)].CopyTo(_buffer.AsSpan(s));
            kept[(_buffer.Length - s)..].CopyTo(_buffer);
            return;
        }

        int at = (int)((Written - data.Length) % _buffer.Length);
        int first = Math.Min(data.Length, _buffer.Length - at);
        data[..first].CopyTo(_buffer.AsSpan(at));
        data[first..].CopyTo(_buffer);
    }

    /// <summary>The last <paramref name="max"/> bytes kept (fewer if fewer were written), oldest first.</summary>
    public byte[] Tail(int max)
    {
        int n = Math.Clamp(max, 0, Count);
        var tail = new byte[n];
        int start = (int)((Written - n) % _buffer.Length);
        int first = Math.Min(n, _buffer.Length - start);
        _buffer.AsSpan(start, first).CopyTo(tail);
        _buffer.AsSpan(0, n - first).CopyTo(tail.AsSpan(first));
        return tail;
    }
}
