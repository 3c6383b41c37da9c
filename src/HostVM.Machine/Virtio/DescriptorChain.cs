namespace HostVM.Machine.Virtio;

/// <summary>
/// A request the driver made available: its head index and its buffers, device-readable ones first,
/// then device-writable ones. Every segment was checked to lie in guest RAM when the chain was popped.
/// One instance is reused for every pop of a queue, so a request costs no allocation.
/// </summary>
public sealed class DescriptorChain
{
    private DescriptorSegment[] _segments = new DescriptorSegment[16];
    private GuestMemory? _memory;
    private bool _sawWritable; // also set by an empty writable buffer, which is not kept as a segment

    public ushort Head { get; private set; }

    public int Count { get; private set; }

    /// <summary>How many of the first segments the device reads (the rest it writes).</summary>
    public int ReadableCount { get; private set; }

    public uint ReadableLength { get; private set; }

    public uint WritableLength { get; private set; }

    public ReadOnlySpan<DescriptorSegment> Segments => _segments.AsSpan(0, Count);

    public ReadOnlySpan<DescriptorSegment> ReadableSegments => _segments.AsSpan(0, ReadableCount);

    public ReadOnlySpan<DescriptorSegment> WritableSegments => _segments.AsSpan(ReadableCount, Count - ReadableCount);

    public GuestMemory Memory => _memory ?? throw new InvalidOperationException("The chain is empty.");

    internal void Begin(GuestMemory memory, ushort head)
    {
        _memory = memory;
        Head = head;
        Count = 0;
        ReadableCount = 0;
        ReadableLength = 0;
        WritableLength = 0;
        _sawWritable = false;
    }

    internal void Add(ulong address, uint length, bool writable)
    {
        if (!writable && _sawWritable)
        {
            throw new VirtqueueException("a device-readable buffer follows a device-writable one");
        }

        _sawWritable |= writable;

        if (length == 0)
        {
            return;
        }

        if (!_memory!.Contains(address, length))
        {
            throw new VirtqueueException($"buffer 0x{address:x}+0x{length:x} is outside guest RAM");
        }

        if (writable)
        {
            if (WritableLength + (ulong)length > uint.MaxValue)
            {
                throw new VirtqueueException("the chain's writable buffers exceed 4 GiB");
            }

            WritableLength += length;
        }
        else
        {
            if (ReadableLength + (ulong)length > uint.MaxValue)
            {
                throw new VirtqueueException("the chain's readable buffers exceed 4 GiB");
            }

            ReadableLength += length;
            ReadableCount++;
        }

        if (Count == _segments.Length)
        {
            Array.Resize(ref _segments, _segments.Length * 2);
        }

        _segments[Count++] = new DescriptorSegment(address, length, writable);
    }

    /// <summary>Copies readable bytes starting at <paramref name="offset"/> into <paramref name="destination"/>; returns how many.</summary>
    public int Read(uint offset, Span<byte> destination)
    {
        int done = 0;
        foreach (var s in ReadableSegments)
        {
            if (done == destination.Length)
            {
                break;
            }

            if (offset >= s.Length)
            {
                offset -= s.Length;
                continue;
            }

            uint n = (uint)Math.Min(s.Length - offset, (uint)(destination.Length - done));
            Memory.TryGetReadable(s.Address + offset, n, out var span);
            span.CopyTo(destination[done..]);
            done += (int)n;
            offset = 0;
        }

        return done;
    }

    /// <summary>Copies <paramref name="source"/> into the writable buffers at <paramref name="offset"/>; returns how many bytes fit.</summary>
    public int Write(uint offset, ReadOnlySpan<byte> source)
    {
        int done = 0;
        foreach (var s in WritableSegments)
        {
            if (done == source.Length)
            {
                break;
            }

            if (offset >= s.Length)
            {
                offset -= s.Length;
                continue;
            }

            uint n = (uint)Math.Min(s.Length - offset, (uint)(source.Length - done));
            Memory.TryGetWritable(s.Address + offset, n, out var span);
            source.Slice(done, (int)n).CopyTo(span);
            Memory.WroteRange(s.Address + offset, n);
            done += (int)n;
            offset = 0;
        }

        return done;
    }
}
