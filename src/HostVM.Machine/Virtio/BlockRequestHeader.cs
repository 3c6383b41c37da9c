using System.Buffers.Binary;

namespace HostVM.Machine.Virtio;

/// <summary>
/// A virtio-blk request's header (and, for DISCARD and WRITE_ZEROES, its one range), read out of
/// guest memory exactly once, when the request is taken off the queue. The guest can rewrite its
/// buffers at any time, so what the rate limiter charges and what the device runs must both come from
/// this one copy: reading the header again would let a request be charged as a FLUSH and run as a
/// 32 MiB write.
/// </summary>
internal readonly record struct BlockRequestHeader(bool Complete, uint Type, ulong Sector, bool HasRange, ulong RangeSector, uint RangeSectors, uint RangeFlags)
{
    public const int RangeSize = 16;

    public static BlockRequestHeader Read(DescriptorChain chain)
    {
        Span<byte> bytes = stackalloc byte[VirtioBlock.HeaderSize + RangeSize];
        int got = chain.Read(0, bytes[..Math.Min(bytes.Length, (int)Math.Min(chain.ReadableLength, (uint)bytes.Length))]);
        if (got < VirtioBlock.HeaderSize)
        {
            return default;
        }

        uint type = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]);
        // One 16-byte range per request (max_discard_seg = max_write_zeroes_seg = 1), exactly.
        bool hasRange = chain.ReadableLength == VirtioBlock.HeaderSize + RangeSize && got == bytes.Length;
        var range = bytes[VirtioBlock.HeaderSize..];
        return hasRange
            ? new(true, type, sector, true, BinaryPrimitives.ReadUInt64LittleEndian(range), BinaryPrimitives.ReadUInt32LittleEndian(range[8..]), BinaryPrimitives.ReadUInt32LittleEndian(range[12..]))
            : new(true, type, sector, false, 0, 0, 0);
    }

    /// <summary>
    /// What the request costs the bandwidth bucket: the bytes it moves, and for DISCARD and
    /// WRITE_ZEROES the bytes of the range they change on the host (as QEMU's throttling counts them as
    /// writes), so they are not a free way around the limit.
    /// </summary>
    public long Cost(DescriptorChain chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        if (!Complete)
        {
            return 0;
        }

        return Type switch
        {
            VirtioBlock.RequestIn => Math.Max(0, (long)chain.WritableLength - 1),
            VirtioBlock.RequestOut => Math.Max(0, (long)chain.ReadableLength - VirtioBlock.HeaderSize),
            VirtioBlock.RequestDiscard or VirtioBlock.RequestWriteZeroes when HasRange => (long)Math.Min(RangeSectors, VirtioBlock.MaxDiscardSectors) * VirtioBlock.SectorSize,
            _ => 0,
        };
    }
}
