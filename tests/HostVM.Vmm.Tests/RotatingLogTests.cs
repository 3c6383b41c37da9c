namespace HostVM.Vmm.Tests;

/// <summary>The serial log's bound: never more than the cap per file, two files at most, the newest output always in them.</summary>
public sealed class RotatingLogTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("hostvm-rotating-");

    private string LogPath => Path.Combine(_dir.FullName, "serial.log");

    private static byte[] Stream(int length) => [.. Enumerable.Range(0, length).Select(i => (byte)('a' + (i % 26)))];

    [Theory]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(999)]
    [InlineData(1000)]
    [InlineData(4500)]
    public void FilesStayUnderTheCapAndHoldTheLatestOutput(int chunk)
    {
        var all = Stream(12_345);
        using (var log = new RotatingLog(LogPath, 1000))
        {
            for (int at = 0; at < all.Length; at += chunk)
            {
                log.Write(all, at, Math.Min(chunk, all.Length - at));
                Assert.True(new FileInfo(LogPath).Length <= 1000);
                Assert.True(!File.Exists(LogPath + ".1") || new FileInfo(LogPath + ".1").Length == 1000, "the older generation is a full file");
            }
        }

        Assert.Equal(["serial.log", "serial.log.1"], _dir.GetFiles().Select(f => f.Name).Order());
        // Both files together are the newest output, in order, with nothing lost at the seam.
        byte[] kept = [.. File.ReadAllBytes(LogPath + ".1"), .. File.ReadAllBytes(LogPath)];
        Assert.Equal(all[^kept.Length..], kept);
        Assert.True(kept.Length >= 1000);
        Assert.Equal(all[^Math.Min(1500, kept.Length)..], RotatingLog.ReadTail(LogPath, 1500));
        Assert.Equal(kept, RotatingLog.ReadTail(LogPath, 1 << 20));
        Assert.Equal(all[^10..], RotatingLog.ReadTail(LogPath, 10));
    }

    [Fact]
    public void AppendsToAnEarlierRunAndRotatesAFileAlreadyOverTheCap()
    {
        File.WriteAllBytes(LogPath, Stream(3000)); // written before the cap was lowered
        using (var log = new RotatingLog(LogPath, 1000))
        {
            log.Write("new run\n"u8);
        }

        Assert.Equal("new run\n", File.ReadAllText(LogPath));
        Assert.Equal(3000, new FileInfo(LogPath + ".1").Length);
        using (var log = new RotatingLog(LogPath, 1000))
        {
            log.Write("second\n"u8);
        }

        Assert.Equal("new run\nsecond\n", File.ReadAllText(LogPath));
    }

    [Fact]
    public void ReadTailOfAMissingLogIsEmpty() => Assert.Empty(RotatingLog.ReadTail(LogPath, 100));

    public void Dispose() => _dir.Delete(recursive: true);
}
