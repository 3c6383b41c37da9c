namespace HostVM.Storage.Qcow2;

/// <summary>
/// A persistent dirty bitmap of a qcow2 image (QEMU's "dirty tracking bitmap"): bit n is set when guest bytes
/// [n·granularity, (n+1)·granularity) were written, discarded or zeroed while the bitmap was enabled. Held in memory
/// while the image is open, stored in the image's bitmaps extension when it is closed cleanly.
/// </summary>
public sealed class Qcow2Bitmap
{
    /// <summary>QEMU reads granularities from 512 B to 2 GiB.</summary>
    public const int MinGranularityBits = 9, MaxGranularityBits = 31;

    /// <summary>The longest name QEMU reads, in UTF-8 bytes.</summary>
    public const int MaxNameBytes = 1023;

    internal Qcow2Bitmap(string name, int granularityBits, long diskSize, bool enabled, bool stale)
    {
        Name = name;
        GranularityBits = granularityBits;
        Enabled = enabled;
        Stale = stale;
        Bits = new ulong[(BitCount(diskSize) + 63) / 64];
    }

    public string Name { get; }

    public int GranularityBits { get; }

    public long Granularity => 1L << GranularityBits;

    /// <summary>Records writes (QEMU's "auto" flag); a disabled bitmap keeps what it has.</summary>
    public bool Enabled { get; internal set; }

    /// <summary>
    /// The image was not closed cleanly while this bitmap was in use (QEMU's "in-use" flag): writes may be missing from
    /// it, so it must not be trusted (a backup based on it must be a full one). Only clearing it or removing it helps.
    /// </summary>
    public bool Stale { get; internal set; }

    /// <summary>Bit n is guest chunk n; 64 per word, the lowest bit first (as the file stores them, byte by byte).</summary>
    internal ulong[] Bits { get; private set; }

    /// <summary>Where the bitmap's table and data clusters are in the file as opened (freed once a new copy is stored).</summary>
    internal long TableOffset { get; set; }

    internal int TableSize { get; set; }

    internal List<long> DataClusters { get; } = [];

    internal long BitCount(long diskSize) => (diskSize + Granularity - 1) >> GranularityBits;

    /// <summary>Records a change to guest bytes [offset, offset + length) if the bitmap is enabled.</summary>
    internal void Mark(long offset, long length)
    {
        if (Enabled)
        {
            Set(offset, length);
        }
    }

    internal void Set(long offset, long length)
    {
        if (length <= 0)
        {
            return;
        }

        long first = offset >> GranularityBits, last = (offset + length - 1) >> GranularityBits;
        for (long bit = first; bit <= last; bit++)
        {
            if ((bit & 63) == 0 && bit + 63 <= last)
            {
                Bits[bit >> 6] = ulong.MaxValue;
                bit += 63;
                continue;
            }

            Bits[bit >> 6] |= 1UL << (int)(bit & 63);
        }
    }

    internal void Resize(long diskSize)
    {
        var bits = Bits;
        Array.Resize(ref bits, (int)((BitCount(diskSize) + 63) / 64));
        Bits = bits;
    }

    /// <summary>The set bits as byte ranges of the disk, neighbours joined, the last one cut at the disk's end.</summary>
    internal List<(long Offset, long Length)> Extents(long diskSize)
    {
        var extents = new List<(long, long)>();
        long start = -1;
        long count = BitCount(diskSize);
        for (long bit = 0; bit <= count; bit++)
        {
            bool set = bit < count && (Bits[bit >> 6] & (1UL << (int)(bit & 63))) != 0;
            if (set && start < 0)
            {
                start = bit;
            }
            else if (!set && start >= 0)
            {
                long from = start << GranularityBits;
                extents.Add((from, Math.Min(bit << GranularityBits, diskSize) - from));
                start = -1;
            }
        }

        return extents;
    }
}
