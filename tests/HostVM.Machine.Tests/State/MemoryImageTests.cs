namespace HostVM.Machine.Tests.State;

using HostVM.Machine.Memory;
using HostVM.Machine.State;

/// <summary>
/// The memory file: a full snapshot stores the pages that are not zero (and the file's disk use is that), a diff the pages
/// it is told changed; loading full then diff gives the RAM back byte for byte; a damaged, cut or mismatched file is refused.
/// </summary>
public sealed class MemoryImageTests : IDisposable
{
    private const ulong RamBytes = 96UL << 20; // above the 64 MiB a single run writes
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-memory-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void AFullSnapshotStoresOnlyWhatIsNotZeroAndAFullPlusADiffRestoresTheLatestRam()
    {
        using var ram = new GuestRam(RamBytes);
        var random = new Random(7);
        Fill(ram, 0, 3, random);                      // pages 0-2
        Fill(ram, 10, 1, random);                     // a lone page
        Fill(ram, 100, (70 << 20) / 4096, random);    // 70 MiB: more than one run
        Fill(ram, (RamBytes / 4096) - 1, 1, random);  // the last page
        string full = Path.Combine(_dir, "full.mem");
        var map = MemoryImage.Write(ram, full);
        Assert.False(map.Diff);
        Assert.Equal([(0UL, 3UL * 4096), (10UL * 4096, 4096UL), (100UL * 4096, 70UL << 20), (RamBytes - 4096, 4096UL)], map.Extents);
        Assert.Equal((4UL + (70 << 8) + 1) * 4096, map.StoredBytes);
        Assert.InRange(Storage.FileSpace.Allocated(full), (long)map.StoredBytes, (long)map.StoredBytes + (1 << 20)); // holes elsewhere

        // A diff: three pages changed since, one of them now all zero.
        var dirty = new HashSet<ulong> { 1, 50, 200 };
        Fill(ram, 1, 1, random);
        Fill(ram, 50, 1, random);
        ram.GetSpan(ram.BaseAddress + (200 * 4096), 4096).Clear();
        string diff = Path.Combine(_dir, "diff.mem");
        var diffMap = MemoryImage.Write(ram, diff, dirty.Contains);
        Assert.True(diffMap.Diff);
        Assert.Equal([(4096UL, 4096UL), (50UL * 4096, 4096UL), (200UL * 4096, 4096UL)], diffMap.Extents);

        using var restored = new GuestRam(RamBytes);
        MemoryImage.Load(restored, full, MemoryMap.Decode(map.Encode(), "full"), "full");
        MemoryImage.Load(restored, diff, MemoryMap.Decode(diffMap.Encode(), "diff"), "diff");
        Assert.True(ram.GetSpan(ram.BaseAddress, (int)RamBytes).SequenceEqual(restored.GetSpan(restored.BaseAddress, (int)RamBytes)));
    }

    [Fact]
    public void ADamagedCutOrMismatchedMemoryFileIsRefused()
    {
        using var ram = new GuestRam(16UL << 20);
        Fill(ram, 5, 4, new Random(3));
        string path = Path.Combine(_dir, "vm.mem");
        var map = MemoryImage.Write(ram, path);

        using (var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite))
        {
            RandomAccess.Write(file, new byte[] { 0xee }, (6 * 4096) + 17); // one byte, inside a stored page
        }

        Assert.Contains("do not match the memory map's checksum", Load(new GuestRam(16UL << 20), path, map), StringComparison.Ordinal);

        using (var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite))
        {
            RandomAccess.SetLength(file, 7 * 4096);
        }

        Assert.Contains("cut short", Load(new GuestRam(16UL << 20), path, map), StringComparison.Ordinal);
        Assert.Contains("RAM of 16 MiB at 0x80000000; this machine has 32 MiB", Load(new GuestRam(32UL << 20), path, map), StringComparison.Ordinal);
    }

    [Fact]
    public void AMappedMemoryFileIsTheRamCopyOnWriteAndADiscardedPageReadsZero()
    {
        using var ram = new GuestRam(16UL << 20);
        Fill(ram, 3, 5, new Random(11));
        string path = Path.Combine(_dir, "vm.mem");
        MemoryImage.Write(ram, path);
        byte[] file = File.ReadAllBytes(path);

        using var mapped = new GuestRam(16UL << 20);
        mapped.MapFile(path);
        Assert.True(mapped.FileBacked);
        Assert.True(ram.GetSpan(ram.BaseAddress, 16 << 20).SequenceEqual(mapped.GetSpan(mapped.BaseAddress, 16 << 20)));

        // The guest's writes stay in RAM; the file keeps the snapshot.
        mapped.WriteUInt64(mapped.BaseAddress + (4 * 4096), 0x1122334455667788);
        mapped.WriteUInt64(mapped.BaseAddress + (9 * 4096), 0x99);
        Assert.Equal(0x1122334455667788UL, mapped.ReadUInt64(mapped.BaseAddress + (4 * 4096)));
        Assert.Equal(file, File.ReadAllBytes(path));

        // A page given back reads zero, not the file's bytes again.
        mapped.DiscardPage(mapped.BaseAddress + (5 * 4096));
        Assert.True(mapped.GetSpan(mapped.BaseAddress + (5 * 4096), 4096).IndexOfAnyExcept((byte)0) < 0);
        Assert.NotEqual(0UL, mapped.ReadUInt64(mapped.BaseAddress + (6 * 4096)));

        using var other = new GuestRam(32UL << 20);
        Assert.Contains("this machine's RAM is", Assert.Throws<IOException>(() => other.MapFile(path)).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0UL, 0UL)]           // empty
    [InlineData(100UL, 4096UL)]      // not on a page
    [InlineData(16UL << 20, 4096UL)] // past the RAM's end
    public void AMemoryMapWithABadExtentIsRefused(ulong offset, ulong length)
    {
        var map = new MemoryMap(0x8000_0000, 16 << 20, false, [(0, 4096), (offset < 4096 && length > 0 ? offset + 8192 : offset, length)], new byte[32]);
        var e = Assert.Throws<SnapshotFormatException>(() => MemoryMap.Decode(map.Encode(), "m"));
        Assert.StartsWith("snapshot 'm': the memory map: extent 2", e.Message, StringComparison.Ordinal);
        var overlapping = map with { Extents = [(8192, 8192), (4096, 8192)] };
        Assert.Contains("extent 2", Assert.Throws<SnapshotFormatException>(() => MemoryMap.Decode(overlapping.Encode(), "m")).Message, StringComparison.Ordinal);
        Assert.Contains("do not describe RAM", Assert.Throws<SnapshotFormatException>(() => MemoryMap.Decode(map.Encode()[..^1], "m")).Message, StringComparison.Ordinal);
    }

    private static string Load(GuestRam ram, string path, MemoryMap map)
    {
        using (ram)
        {
            return Assert.Throws<SnapshotFormatException>(() => MemoryImage.Load(ram, path, map, "vm")).Message;
        }
    }

    private static void Fill(GuestRam ram, ulong firstPage, ulong pages, Random random)
    {
        var span = ram.GetSpan(ram.BaseAddress + (firstPage * 4096), (int)(pages * 4096));
        random.NextBytes(span);
        span[0] |= 1; // never a page of zeroes by chance
    }
}
