namespace HostVM.Storage;

/// <summary>
/// Copies raw disk content from a stream onto a fresh block device (an import, an export into a file), writing only the
/// blocks that are not all zeros: a fresh device reads zeros elsewhere, so the copy stays as sparse as its content.
/// </summary>
public static class BlockCopy
{
    /// <summary>The unit zeros are skipped in: qcow2's default cluster.</summary>
    public const int Block = 64 * 1024;

    private const int Chunk = 1 << 20;

    /// <summary>
    /// Copies exactly <paramref name="length"/> bytes from <paramref name="source"/> to the start of <paramref name="target"/>
    /// and flushes it; <paramref name="progress"/> hears the bytes copied so far.
    /// </summary>
    /// <exception cref="EndOfStreamException">The stream ended early (its message says where).</exception>
    public static async Task CopyAsync(Stream source, long length, IBlockDevice target, Action<long>? progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        var buffer = new byte[Chunk];
        long offset = 0;
        while (offset < length)
        {
            int want = (int)Math.Min(buffer.Length, length - offset);
            int got = await source.ReadAtLeastAsync(buffer.AsMemory(0, want), want, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (got < want)
            {
                throw new EndOfStreamException($"the content ended after {offset + got} of {length} bytes");
            }

            // A last partial sector (a file whose size is no multiple of 512) is written whole, zero-padded.
            int write = (int)Math.Min((got + 511) / 512 * 512, target.Length - offset);
            buffer.AsSpan(got, write - got).Clear();
            WriteNonZero(target, offset, buffer.AsSpan(0, write));
            offset += got;
            progress?.Invoke(offset);
        }

        target.Flush();
    }

    /// <summary>Writes the <see cref="Block"/>-sized pieces of <paramref name="data"/> that hold anything but zeros.</summary>
    public static void WriteNonZero(IBlockDevice target, long offset, ReadOnlySpan<byte> data)
    {
        ArgumentNullException.ThrowIfNull(target);
        for (int at = 0; at < data.Length; at += Block)
        {
            var block = data.Slice(at, Math.Min(Block, data.Length - at));
            if (block.ContainsAnyExcept((byte)0))
            {
                target.Write(offset + at, block);
            }
        }
    }
}
