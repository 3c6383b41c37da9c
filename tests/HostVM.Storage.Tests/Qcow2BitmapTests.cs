using System.Text.Json;
using HostVM.Storage.Qcow2;

namespace HostVM.Storage.Tests;

/// <summary>
/// Persistent dirty bitmaps in QEMU's bitmaps extension: what HostVM stores, qemu-img lists, checks and merges into a
/// bitmap of its own (which HostVM then reads back); what qemu-io records, HostVM reads; a crash leaves them stale.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class Qcow2BitmapTests : IDisposable
{
    private const long KiB = 1024, MiB = 1 << 20;
    private readonly TempImage _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void ABitmapHostVmStoresIsOneQemuListsChecksAndMerges()
    {
        string image = Path.Combine(_dir.Directory, "tracked.qcow2");
        Qcow2Image.Create(image, 16 * MiB);
        IReadOnlyList<(long, long)> expected;
        using (var disk = Qcow2BlockDevice.Open(image, readOnly: false))
        {
            disk.Write(0, new byte[512]); // before the bitmap: not recorded
            disk.AddBitmap("b0");
            disk.AddBitmap("fine", granularityBits: 12);
            disk.Write(MiB + 100, new byte[5000]);
            disk.Discard(8 * MiB, 256 * KiB);
            disk.WriteZeroes(15 * MiB, MiB, mayUnmap: true);
            disk.SetBitmapEnabled("fine", false);
            disk.Write(4 * MiB, new byte[4096]); // b0 only
            expected = disk.BitmapExtents("b0");
            Assert.Equal([(MiB, 64 * KiB), (4 * MiB, 64 * KiB), (8 * MiB, 256 * KiB), (15 * MiB, MiB)], expected);
            Assert.Equal([(MiB, 8 * KiB), (8 * MiB, 256 * KiB), (15 * MiB, MiB)], disk.BitmapExtents("fine"));
        }

        AssertChecksClean(image);
        var bitmaps = Info(image).GetProperty("format-specific").GetProperty("data").GetProperty("bitmaps").EnumerateArray().ToList();
        Assert.Equal(["b0", "fine"], bitmaps.Select(b => b.GetProperty("name").GetString()));
        Assert.Equal(65536, bitmaps[0].GetProperty("granularity").GetInt64());
        Assert.Equal(["auto"], bitmaps[0].GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
        Assert.Empty(bitmaps[1].GetProperty("flags").EnumerateArray());

        // QEMU reads HostVM's bits and writes them into a bitmap of its own making; HostVM reads that one back.
        string target = Path.Combine(_dir.Directory, "target.qcow2");
        QemuTools.Check("qemu-img", _dir.Directory, "create", "-q", "-f", "qcow2", target, "16M");
        QemuTools.Check("qemu-img", _dir.Directory, "bitmap", "--add", target, "copy");
        QemuTools.Check("qemu-img", _dir.Directory, "bitmap", "--merge", "b0", "-b", image, "-F", "qcow2", target, "copy");
        using var copy = Qcow2BlockDevice.Open(target, readOnly: true);
        Assert.Equal(expected, copy.BitmapExtents("copy"));
    }

    [Fact]
    public void ABitmapQemuRecordedIsReadAndKeptUpToDate()
    {
        string image = Path.Combine(_dir.Directory, "qemu.qcow2");
        QemuTools.Check("qemu-img", _dir.Directory, "create", "-q", "-f", "qcow2", image, "8M");
        QemuTools.Check("qemu-img", _dir.Directory, "bitmap", "--add", "-g", "32768", image, "q0");
        QemuTools.Io(_dir.Directory, image, "write 1M 64k", "write 5M 4k");
        using (var disk = Qcow2BlockDevice.Open(image, readOnly: false))
        {
            var q0 = Assert.Single(disk.Bitmaps);
            Assert.Equal(("q0", 32768L, true, false), (q0.Name, q0.Granularity, q0.Enabled, q0.Stale));
            Assert.Equal([(MiB, 64 * KiB), (5 * MiB, 32 * KiB)], disk.BitmapExtents("q0"));
            disk.Write(7 * MiB, new byte[512]);
        }

        AssertChecksClean(image);
        string target = Path.Combine(_dir.Directory, "target.qcow2");
        QemuTools.Check("qemu-img", _dir.Directory, "create", "-q", "-f", "qcow2", target, "8M");
        QemuTools.Check("qemu-img", _dir.Directory, "bitmap", "--add", "-g", "32768", target, "copy");
        QemuTools.Check("qemu-img", _dir.Directory, "bitmap", "--merge", "q0", "-b", image, "-F", "qcow2", target, "copy");
        using var copy = Qcow2BlockDevice.Open(target, readOnly: true);
        Assert.Equal([(MiB, 64 * KiB), (5 * MiB, 32 * KiB), (7 * MiB, 32 * KiB)], copy.BitmapExtents("copy"));
    }

    [Fact]
    public void ACrashLeavesABitmapStaleUntilItIsCleared()
    {
        string image = Path.Combine(_dir.Directory, "stale.qcow2");
        Qcow2Image.Create(image, 4 * MiB);
        using (var disk = Qcow2BlockDevice.Open(image, readOnly: false))
        {
            disk.AddBitmap("backup");
            disk.Write(0, new byte[4096]);
        }

        // The VMM dies while the image is open: the file as it is then, copied through the open handle.
        string crashed = Path.Combine(_dir.Directory, "crashed.qcow2");
        using (var disk = Qcow2BlockDevice.Open(image, readOnly: false))
        {
            disk.Write(2 * MiB, new byte[4096]);
            disk.Flush();
            var bytes = new byte[RandomAccess.GetLength(disk.Handle)];
            RandomAccess.Read(disk.Handle, bytes, 0);
            File.WriteAllBytes(crashed, bytes);
        }

        Assert.Contains("in-use", QemuTools.Check("qemu-img", _dir.Directory, "info", crashed), StringComparison.Ordinal);
        using (var disk = Qcow2BlockDevice.Open(crashed, readOnly: false))
        {
            Assert.True(Assert.Single(disk.Bitmaps).Stale);
            var e = Assert.Throws<InvalidOperationException>(() => disk.BitmapExtents("backup"));
            Assert.Contains("full one", e.Message, StringComparison.Ordinal);
            disk.ClearBitmap("backup");
            disk.Write(3 * MiB, new byte[512]);
            Assert.Equal([(3 * MiB, 64 * KiB)], disk.BitmapExtents("backup"));
        }

        AssertChecksClean(crashed);
        using (var disk = Qcow2BlockDevice.Open(image, readOnly: true))
        {
            Assert.Equal([(0, 64 * KiB), (2 * MiB, 64 * KiB)], disk.BitmapExtents("backup"));
        }
    }

    [Fact]
    public void BitmapsAreAddedMergedRemovedAndRefusedClearly()
    {
        string image = Path.Combine(_dir.Directory, "ops.qcow2");
        Qcow2Image.Create(image, 4 * MiB, clusterSize: 4096);
        using (var disk = Qcow2BlockDevice.Open(image, readOnly: false))
        {
            disk.AddBitmap("a", granularityBits: 9);
            Assert.Throws<ArgumentException>(() => disk.AddBitmap("a"));
            Assert.Throws<ArgumentException>(() => disk.AddBitmap("g", granularityBits: 8));
            Assert.Throws<ArgumentException>(() => disk.AddBitmap(new string('n', 1024)));
            Assert.Throws<ArgumentException>(() => disk.RemoveBitmap("missing"));
            disk.Write(512, new byte[512]);
            disk.AddBitmap("b");
            disk.Write(3 * MiB, new byte[1]);
            disk.MergeBitmap("a", "b");
            Assert.Equal([(0, 64 * KiB), (3 * MiB, 64 * KiB)], disk.BitmapExtents("b"));
            disk.RemoveBitmap("a");
            disk.Resize(6 * MiB);
            disk.Write((6 * MiB) - 512, new byte[512]);
            Assert.Equal([(0, 64 * KiB), (3 * MiB, 64 * KiB), ((6 * MiB) - (64 * KiB), 64 * KiB)], disk.BitmapExtents("b"));
        }

        AssertChecksClean(image);
        var names = Info(image).GetProperty("format-specific").GetProperty("data").GetProperty("bitmaps").EnumerateArray().Select(b => b.GetProperty("name").GetString());
        Assert.Equal(["b"], names);
        using (var disk = Qcow2BlockDevice.Open(image, readOnly: false))
        {
            disk.RemoveBitmap("b");
        }

        AssertChecksClean(image);
        Assert.False(Info(image).GetProperty("format-specific").GetProperty("data").TryGetProperty("bitmaps", out _));
        using var readOnly = Qcow2BlockDevice.Open(image, readOnly: true);
        Assert.Throws<InvalidOperationException>(() => readOnly.AddBitmap("x"));
    }

    private void AssertChecksClean(string image)
    {
        var (code, output) = QemuTools.Run("qemu-img", _dir.Directory, "check", "-f", "qcow2", image);
        Assert.True(code == 0 && output.Contains("No errors were found", StringComparison.Ordinal), $"qemu-img check {image} ({code}): {output}");
    }

    private JsonElement Info(string image) =>
        JsonDocument.Parse(QemuTools.Check("qemu-img", _dir.Directory, "info", "--output=json", image)).RootElement.Clone();
}
