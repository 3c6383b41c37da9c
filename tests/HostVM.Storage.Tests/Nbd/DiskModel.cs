using HostVM.Storage;

namespace HostVM.Storage.Tests.Nbd;

/// <summary>
/// What a disk should hold after a random mix of writes, gathered writes, write-zeroes and discards, sector by sector
/// (a discarded sector may read as anything until it is written again); reads are checked against it as they go.
/// </summary>
internal sealed class DiskModel
{
    private const int Sector = 512;
    private readonly bool[] _unknown;

    public DiskModel(byte[] contents)
    {
        Bytes = contents;
        _unknown = new bool[contents.Length / Sector];
    }

    public byte[] Bytes { get; }

    /// <summary>Runs <paramref name="operations"/> random requests of up to <paramref name="maxSectors"/> sectors on <paramref name="disk"/>.</summary>
    public void RandomIo(IBlockDevice disk, int seed, int operations, int maxSectors = 256)
    {
        var random = new Random(seed);
        int sectors = Bytes.Length / Sector;
        for (int i = 0; i < operations; i++)
        {
            int count = random.Next(1, Math.Min(maxSectors, sectors) + 1);
            int first = random.Next(0, sectors - count + 1);
            long offset = (long)first * Sector;
            int length = count * Sector;
            switch (random.Next(10))
            {
                case < 4:
                {
                    var data = new byte[length];
                    random.NextBytes(data);
                    disk.Write(offset, data);
                    Written(offset, data);
                    break;
                }

                case 4:
                {
                    var data = new byte[length];
                    random.NextBytes(data);
                    int split = random.Next(0, count + 1) * Sector;
                    disk.Write(offset, [data.AsMemory(0, split), data.AsMemory(split)]);
                    Written(offset, data);
                    break;
                }

                case 5:
                    disk.WriteZeroes(offset, length, mayUnmap: random.Next(2) == 0);
                    Written(offset, new byte[length]);
                    break;
                case 6:
                    disk.Discard(offset, length);
                    _unknown.AsSpan(first, count).Fill(true);
                    break;
                case 7:
                {
                    var a = new byte[length / 2 / Sector * Sector];
                    var b = new byte[length - a.Length];
                    disk.Read(offset, [a, b]);
                    Check(offset, [.. a, .. b]);
                    break;
                }

                default:
                {
                    var data = new byte[length];
                    disk.Read(offset, data);
                    Check(offset, data);
                    break;
                }
            }
        }
    }

    /// <summary>Fails unless <paramref name="actual"/> (read at <paramref name="offset"/>) matches every known sector.</summary>
    public void Check(long offset, ReadOnlySpan<byte> actual)
    {
        for (int s = 0; s < actual.Length / Sector; s++)
        {
            long at = offset + ((long)s * Sector);
            if (_unknown[at / Sector])
            {
                continue;
            }

            if (!actual.Slice(s * Sector, Sector).SequenceEqual(Bytes.AsSpan((int)at, Sector)))
            {
                Assert.Fail($"sector {at / Sector} (byte {at}) differs from what was written");
            }
        }
    }

    private void Written(long offset, byte[] data)
    {
        data.CopyTo(Bytes, offset);
        _unknown.AsSpan((int)(offset / Sector), data.Length / Sector).Clear();
    }
}
