using HostVM.Networking;

namespace HostVM.Networking.Tests;

public sealed class KernelRandomTests
{
    [Fact]
    public void Fills_every_byte_of_buffers_of_any_size()
    {
        foreach (int size in new[] { 1, 7, 256, 65536 })
        {
            // Each byte stays 0 with probability 1/256: over several fills, every position must change.
            var seen = new bool[size];
            for (int round = 0; round < 16; round++)
            {
                var b = KernelRandom.GetBytes(size);
                for (int i = 0; i < size; i++)
                {
                    seen[i] |= b[i] != 0;
                }
            }

            Assert.All(seen, Assert.True);
        }
    }

    [Fact]
    public void Integers_fall_in_range_and_cover_it()
    {
        var counts = new int[6];
        for (int i = 0; i < 6000; i++)
        {
            counts[KernelRandom.GetInt32(6)]++;
        }

        Assert.All(counts, c => Assert.InRange(c, 700, 1300)); // 1000 each expected; 10 sigma is about 300
        Assert.Equal(0, KernelRandom.GetInt32(1));
        Assert.Throws<ArgumentOutOfRangeException>(() => KernelRandom.GetInt32(0));
    }
}
