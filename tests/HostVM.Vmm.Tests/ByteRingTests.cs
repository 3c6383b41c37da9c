namespace HostVM.Vmm.Tests;

/// <summary>The console's kept output: the tail is always the last bytes written, in order, whatever the write sizes.</summary>
public sealed class ByteRingTests
{
    private static byte[] Stream(int length) => [.. Enumerable.Range(0, length).Select(i => (byte)(i * 7 + i / 251))];

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(40)]
    public void TailIsTheLastBytesWrittenForAnyChunking(int chunk)
    {
        var ring = new ByteRing(16);
        var all = Stream(203);
        for (int at = 0; at < all.Length; at += chunk)
        {
            ring.Write(all.AsSpan(at, Math.Min(chunk, all.Length - at)));
            int written = Math.Min(at + chunk, all.Length);
            Assert.Equal(written, ring.Written);
            Assert.Equal(Math.Min(written, 16), ring.Count);
            Assert.Equal(all[Math.Max(0, written - 16)..written], ring.Tail(16));
            Assert.Equal(all[Math.Max(0, written - 5)..written], ring.Tail(5));
        }
    }

    [Fact]
    public void TailIsShortBeforeTheRingFillsAndNeverLongerThanAsked()
    {
        var ring = new ByteRing(1024);
        Assert.Empty(ring.Tail(100));
        ring.Write("hello"u8);
        Assert.Equal("hello"u8.ToArray(), ring.Tail(100));
        Assert.Equal("llo"u8.ToArray(), ring.Tail(3));
        Assert.Empty(ring.Tail(0));
        Assert.Empty(ring.Tail(-1));
    }
}
