namespace HostVM.Storage;

/// <summary>
/// A disk as the virtio-blk device sees it: a byte array of fixed <see cref="Length"/>.
/// Calls come from one I/O thread of the device (never from a vCPU thread) and may block on host I/O.
/// Failures are reported as <see cref="IOException"/>: the device fails that request and carries on.
/// </summary>
public interface IBlockDevice : IDisposable
{
    /// <summary>Size in bytes, a multiple of 512.</summary>
    long Length { get; }

    /// <summary>Writes, discards and write-zeroes fail; the guest is told the drive is read-only.</summary>
    bool ReadOnly { get; }

    /// <summary>The serial the guest reads with GET_ID (up to 20 bytes of ASCII).</summary>
    string Identifier { get; }

    /// <summary>Reads <c>destination.Length</c> bytes at <paramref name="offset"/> (within <see cref="Length"/>).</summary>
    void Read(long offset, Span<byte> destination);

    /// <summary>
    /// Reads consecutive bytes from <paramref name="offset"/> into <paramref name="destinations"/> in order
    /// (a scatter read: one preadv where the host can, straight into guest memory).
    /// </summary>
    void Read(long offset, IReadOnlyList<Memory<byte>> destinations);

    /// <summary>Writes <paramref name="sources"/> one after the other from <paramref name="offset"/> (a gather write).</summary>
    void Write(long offset, IReadOnlyList<ReadOnlyMemory<byte>> sources);

    /// <summary>Writes <paramref name="source"/> at <paramref name="offset"/> (within <see cref="Length"/>).</summary>
    void Write(long offset, ReadOnlySpan<byte> source);

    /// <summary>Makes every completed write durable (fsync).</summary>
    void Flush();

    /// <summary>The guest no longer needs the range: free it where the host can (punch a hole); reads may return anything.</summary>
    void Discard(long offset, long length);

    /// <summary>The range reads as zeroes afterwards; with <paramref name="mayUnmap"/> its space may be freed.</summary>
    void WriteZeroes(long offset, long length, bool mayUnmap);
}
