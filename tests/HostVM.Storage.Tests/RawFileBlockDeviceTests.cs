namespace HostVM.Storage.Tests;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class RawFileBlockDeviceTests : IDisposable
{
    private const long MiB = 1024 * 1024;
    private readonly TempImage temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void ReadsBackWhatWasWrittenAtOffsets()
    {
        string path = temp.Create(4 * MiB);
        using (var disk = RawFileBlockDevice.Open(path, readOnly: false))
        {
            Assert.Equal(4 * MiB, disk.Length);
            Assert.False(disk.ReadOnly);
            byte[] data = Enumerable.Range(0, 3000).Select(i => (byte)(i * 7)).ToArray();
            disk.Write(512, data);
            disk.Write((4 * MiB) - 512, data.AsSpan(0, 512));
            disk.Flush();

            var back = new byte[3000];
            disk.Read(512, back);
            Assert.Equal(data, back);
            var tail = new byte[512];
            disk.Read((4 * MiB) - 512, tail);
            Assert.Equal(data.AsSpan(0, 512).ToArray(), tail);
            var untouched = new byte[512];
            disk.Read(0, untouched);
            Assert.All(untouched, b => Assert.Equal(0, b));
        }

        // The bytes are really in the file, where a raw image keeps them.
        byte[] file = File.ReadAllBytes(path);
        Assert.Equal((byte)7, file[513]);
    }

    [Fact]
    public void VectoredWriteAndReadMoveTheBuffersInOrder()
    {
        using var disk = RawFileBlockDevice.Open(temp.Create(1 << 20), readOnly: false);
        var rnd = new Random(5);
        byte[][] parts = [new byte[512], new byte[4096], new byte[1536]];
        foreach (var p in parts)
        {
            rnd.NextBytes(p);
        }

        disk.Write(8192, [.. parts.Select(p => (ReadOnlyMemory<byte>)p)]);
        byte[] whole = new byte[512 + 4096 + 1536];
        disk.Read(8192, whole);
        Assert.Equal(parts.SelectMany(p => p).ToArray(), whole);

        byte[][] back = [new byte[3000], new byte[3144]];
        disk.Read(8192, [.. back.Select(b => (Memory<byte>)b)]);
        Assert.Equal(whole, back.SelectMany(b => b).ToArray());

        Assert.Throws<ArgumentOutOfRangeException>(() => disk.Read((1 << 20) - 512, [new byte[512], new byte[512]]));
        Assert.Throws<ArgumentOutOfRangeException>(() => disk.Write((1 << 20) - 512, [new byte[512], new byte[1]]));
    }

    [Fact]
    public void DiscardPunchesARealHole()
    {
        string path = temp.Create(4 * MiB);
        using var disk = RawFileBlockDevice.Open(path, readOnly: false);
        disk.Write(0, Filled(4 * (int)MiB, 0xaa));
        disk.Flush();
        Assert.Equal(4 * MiB, NextHole(disk, 0));

        disk.Discard(MiB, MiB);

        Assert.Equal(MiB, NextHole(disk, 0));
        Assert.Equal(2 * MiB, NextData(disk, MiB));
        var back = new byte[MiB];
        disk.Read(MiB, back);
        Assert.All(back, b => Assert.Equal(0, b));
        disk.Read(0, back.AsSpan(0, 1));
        Assert.Equal(0xaa, back[0]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void WriteZeroesReadsAsZeroes(bool mayUnmap)
    {
        string path = temp.Create(4 * MiB);
        using var disk = RawFileBlockDevice.Open(path, readOnly: false);
        disk.Write(0, Filled(4 * (int)MiB, 0x55));

        // Unaligned on purpose: the partial blocks at each end must be zeroed too.
        disk.WriteZeroes(1000, 100_000, mayUnmap);

        var back = new byte[102_000];
        disk.Read(0, back);
        Assert.All(back.AsSpan(0, 1000).ToArray(), b => Assert.Equal(0x55, b));
        Assert.All(back.AsSpan(1000, 100_000).ToArray(), b => Assert.Equal(0, b));
        Assert.All(back.AsSpan(101_000).ToArray(), b => Assert.Equal(0x55, b));
        if (mayUnmap)
        {
            // The whole blocks inside the range were freed (a hole begins at the first 4 KiB boundary).
            Assert.Equal(4096, NextHole(disk, 0));
        }
    }

    [Fact]
    public void ReadOnlyDeviceRefusesChanges()
    {
        string path = temp.Create(MiB);
        using var disk = RawFileBlockDevice.Open(path, readOnly: true);
        Assert.True(disk.ReadOnly);
        disk.Read(0, new byte[512]);
        disk.Flush();
        Assert.Throws<IOException>(() => disk.Write(0, new byte[512]));
        Assert.Throws<IOException>(() => disk.Discard(0, 512));
        Assert.Throws<IOException>(() => disk.WriteZeroes(0, 512, mayUnmap: true));
    }

    [Fact]
    public void OutOfRangeIsRejected()
    {
        using var disk = RawFileBlockDevice.Open(temp.Create(MiB), readOnly: false);
        Assert.Throws<ArgumentOutOfRangeException>(() => disk.Read(MiB - 511, new byte[512]));
        Assert.Throws<ArgumentOutOfRangeException>(() => disk.Read(-1, new byte[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => disk.Write(MiB, new byte[1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => disk.Discard(0, MiB + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => disk.WriteZeroes(long.MaxValue, 2, mayUnmap: false));
        disk.Read(MiB, Span<byte>.Empty);
    }

    [Fact]
    public void MissingFileSaysSo()
    {
        string path = Path.Combine(temp.Directory, "nope.img");
        var e = Assert.Throws<BlockDeviceException>(() => RawFileBlockDevice.Open(path, readOnly: false));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);
        Assert.Equal(path, e.Path);
    }

    [Fact]
    public void DirectorySaysSo()
    {
        var e = Assert.Throws<BlockDeviceException>(() => RawFileBlockDevice.Open(temp.Directory, readOnly: true));
        Assert.Contains("is a directory", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EmptyFileSaysSo()
    {
        string path = temp.Create(0);
        var e = Assert.Throws<BlockDeviceException>(() => RawFileBlockDevice.Open(path, readOnly: false));
        Assert.Contains("is empty", e.Message, StringComparison.Ordinal);
        Assert.Contains("truncate -s", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SizeNotAMultipleOf512SaysSo()
    {
        string path = temp.Create(1000);
        var e = Assert.Throws<BlockDeviceException>(() => RawFileBlockDevice.Open(path, readOnly: true));
        Assert.Contains("1000 bytes", e.Message, StringComparison.Ordinal);
        Assert.Contains("not a multiple of 512", e.Message, StringComparison.Ordinal);
        Assert.Contains("truncate -s 1024", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadWriteOpenOfAReadOnlyFileSaysSo()
    {
        string path = temp.Create(MiB);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.GroupRead);
        var e = Assert.Throws<BlockDeviceException>(() => RawFileBlockDevice.Open(path, readOnly: false));
        Assert.Contains("read-only", e.Message, StringComparison.Ordinal);
        Assert.Contains("chmod", e.Message, StringComparison.Ordinal);

        // The same file attached read-only is fine.
        using var disk = RawFileBlockDevice.Open(path, readOnly: true);
        Assert.True(disk.ReadOnly);
    }

    [Fact]
    public void UnreadableFileSaysSo()
    {
        // Root reads every file whatever its mode, so as root the open runs as another user.
        string path = temp.Create(MiB);
        File.SetUnixFileMode(temp.Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        File.SetUnixFileMode(path, UnixFileMode.UserWrite);
        var e = AsAnotherUser.Run(() => Assert.Throws<BlockDeviceException>(() => RawFileBlockDevice.Open(path, readOnly: true)));
        Assert.True(e.Message.Contains("No permission", StringComparison.Ordinal), e.Message);

        // The same file opens for that user once it is readable to all, so the refusal was the file's mode.
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        using var readable = AsAnotherUser.Run(() => RawFileBlockDevice.Open(path, readOnly: true));
        Assert.True(readable.ReadOnly);
    }

    [Fact]
    public void SecondWriterIsLockedOut()
    {
        string path = temp.Create(MiB);
        using (RawFileBlockDevice.Open(path, readOnly: false))
        {
            var e = Assert.Throws<BlockDeviceException>(() => RawFileBlockDevice.Open(path, readOnly: false));
            Assert.Contains("in use by another process", e.Message, StringComparison.Ordinal);
            e = Assert.Throws<BlockDeviceException>(() => RawFileBlockDevice.Open(path, readOnly: true));
            Assert.Contains("in use by another process", e.Message, StringComparison.Ordinal);
        }

        // Closing releases the lock.
        using var again = RawFileBlockDevice.Open(path, readOnly: false);
    }

    [Fact]
    public void ReadersShareButKeepWritersOut()
    {
        string path = temp.Create(MiB);
        using var first = RawFileBlockDevice.Open(path, readOnly: true);
        using var second = RawFileBlockDevice.Open(path, readOnly: true);
        var e = Assert.Throws<BlockDeviceException>(() => RawFileBlockDevice.Open(path, readOnly: false));
        Assert.Contains("in use by another process", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void IdentifierComesFromTheFileNameUnlessGiven()
    {
        using (var disk = RawFileBlockDevice.Open(temp.Create(MiB, "a very long image name for the root disk.img"), readOnly: true))
        {
            Assert.Equal("averylongimagenamefo", disk.Identifier);
        }

        using (var disk = RawFileBlockDevice.Open(temp.Create(MiB, "data.raw"), readOnly: true, identifier: "SERIAL-42"))
        {
            Assert.Equal("SERIAL-42", disk.Identifier);
        }

        Assert.Throws<ArgumentException>(() => RawFileBlockDevice.Open(temp.Create(MiB, "x.img"), readOnly: true, identifier: new string('x', 21)));
        Assert.Throws<ArgumentException>(() => RawFileBlockDevice.Open(temp.Create(MiB, "y.img"), readOnly: true, identifier: "disk\u00e9"));
    }

    [Fact]
    public void DisposedDeviceThrows()
    {
        var disk = RawFileBlockDevice.Open(temp.Create(MiB), readOnly: false);
        disk.Dispose();
        disk.Dispose();
        Assert.Throws<ObjectDisposedException>(() => disk.Read(0, new byte[512]));
    }

    private static byte[] Filled(int length, byte value)
    {
        var data = new byte[length];
        Array.Fill(data, value);
        return data;
    }

    // SEEK_HOLE/SEEK_DATA report what the file system really allocated, unlike the file's length.
    private static long NextHole(RawFileBlockDevice disk, long from) => LinuxFile.Seek(disk.Handle, from, LinuxFile.SeekHole);

    private static long NextData(RawFileBlockDevice disk, long from) => LinuxFile.Seek(disk.Handle, from, LinuxFile.SeekData);

    [Fact]
    public void AFailedFlushFailsEveryLaterFlushUntilReopened()
    {
        string path = temp.Create(MiB);
        using (var disk = RawFileBlockDevice.Open(path, readOnly: false))
        {
            int calls = 0;
            disk.FlushToDisk = _ => throw new IOException($"EIO #{++calls}"); // the kernel reports a lost write once
            Assert.Equal("EIO #1", Assert.Throws<IOException>(disk.Flush).Message);

            disk.FlushToDisk = _ => calls++; // and then says all is well
            var again = Assert.Throws<IOException>(disk.Flush);
            Assert.Contains("an earlier flush failed (EIO #1)", again.Message, StringComparison.Ordinal);
            Assert.Equal(1, calls); // not even asked: its success would be a lie
        }

        using var reopened = RawFileBlockDevice.Open(path, readOnly: false);
        reopened.Flush();
    }
}
