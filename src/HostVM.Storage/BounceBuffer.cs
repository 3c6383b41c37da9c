using System.Buffers;

namespace HostVM.Storage;

/// <summary>
/// A guest request's list of buffers handled as one range through one pooled buffer, for devices whose I/O works best
/// on a single span (qcow2 allocates whole clusters; NBD sends one request): copied together before a write, copied
/// out after a read.
/// </summary>
internal static class BounceBuffer
{
    /// <summary>Reads the consecutive bytes for <paramref name="destinations"/> with one <see cref="IBlockDevice.Read(long, Span{byte})"/>.</summary>
    public static void ReadScattered(IBlockDevice device, long offset, IReadOnlyList<Memory<byte>> destinations)
    {
        if (destinations.Count == 1)
        {
            device.Read(offset, destinations[0].Span);
            return;
        }

        int total = 0;
        foreach (var d in destinations)
        {
            total = checked(total + d.Length);
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            device.Read(offset, buffer.AsSpan(0, total));
            int at = 0;
            foreach (var d in destinations)
            {
                buffer.AsSpan(at, d.Length).CopyTo(d.Span);
                at += d.Length;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Writes <paramref name="sources"/> one after the other with one <see cref="IBlockDevice.Write(long, ReadOnlySpan{byte})"/>.</summary>
    public static void WriteGathered(IBlockDevice device, long offset, IReadOnlyList<ReadOnlyMemory<byte>> sources)
    {
        if (sources.Count == 1)
        {
            device.Write(offset, sources[0].Span);
            return;
        }

        int total = 0;
        foreach (var s in sources)
        {
            total = checked(total + s.Length);
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(total);
        try
        {
            int at = 0;
            foreach (var s in sources)
            {
                s.Span.CopyTo(buffer.AsSpan(at));
                at += s.Length;
            }

            device.Write(offset, buffer.AsSpan(0, total));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
