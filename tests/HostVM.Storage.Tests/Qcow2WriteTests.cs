using System.Buffers.Binary;
using System.Text.Json;
using HostVM.Storage.Qcow2;

namespace HostVM.Storage.Tests;

/// <summary>
/// qcow2 images HostVM writes: checked by qemu-img (an independent peer) after random sequences of writes, discards,
/// write-zeroes, resizes and reopenings, compared byte for byte with a raw model; written in turns with qemu-io; and
/// copied after every single write HostVM makes, which is what a kill -9 at that moment leaves, each copy checked.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class Qcow2WriteTests : IDisposable
{
    private const int KiB = 1024, MiB = 1 << 20;
    private readonly TempImage _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void AnImageHostVmCreatesIsOneQemuImgChecksAndDescribes()
    {
        string plain = Path.Combine(_dir.Directory, "plain.qcow2");
        Qcow2Image.Create(plain, 16 * MiB);
        AssertChecksClean(plain);
        var info = Info(plain);
        Assert.Equal(16 * MiB, info.GetProperty("virtual-size").GetInt64());
        Assert.Equal(64 * KiB, info.GetProperty("cluster-size").GetInt32());
        Assert.Equal("1.1", info.GetProperty("format-specific").GetProperty("data").GetProperty("compat").GetString());
        Assert.Equal(4 * 64 * KiB, new FileInfo(plain).Length); // header, refcount table and block, L1: nothing more

        string baseImage = _dir.Create(3 * MiB, "base.raw");
        string overlay = Path.Combine(_dir.Directory, "overlay.qcow2");
        Qcow2Image.Create(overlay, 0, "base.raw", "raw");
        info = Info(overlay);
        Assert.Equal(3 * MiB, info.GetProperty("virtual-size").GetInt64());
        Assert.Equal("base.raw", info.GetProperty("backing-filename").GetString());
        Assert.Equal("raw", info.GetProperty("backing-filename-format").GetString());
        AssertChecksClean(overlay);

        var e = Assert.Throws<BlockDeviceException>(() => Qcow2Image.Create(plain, MiB));
        Assert.Contains("already exists", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<BlockDeviceException>(() => Qcow2Image.Create(Path.Combine(_dir.Directory, "odd.qcow2"), 1000));
        Assert.Contains("512-byte sectors", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<BlockDeviceException>(() => Qcow2Image.Create(Path.Combine(_dir.Directory, "orphan.qcow2"), 0, "nowhere.raw", "raw"));
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir.Directory, "orphan.qcow2")));
        Assert.False(File.Exists(baseImage + ".qcow2"));
    }

    [Fact]
    public void AnImageHoldsDataOnceAnyClusterWasWrittenOrItHasASnapshot()
    {
        _dir.Create(3 * MiB, "base.raw");
        string ours = Path.Combine(_dir.Directory, "ours.qcow2");
        Qcow2Image.Create(ours, 0, "base.raw", "raw");
        Assert.False(Qcow2Image.HoldsData(ours));
        using (var disk = Qcow2BlockDevice.Open(ours, readOnly: false))
        {
            disk.Write(2 * MiB, new byte[512]);
        }

        Assert.True(Qcow2Image.HoldsData(ours));

        // QEMU's own: empty (version 3 and 2), written once and discarded again (its L2 table stays: "may", never a wrong
        // "no"), and with an internal snapshot of the empty disk.
        foreach (string compat in new[] { "1.1", "0.10" })
        {
            string theirs = Path.Combine(_dir.Directory, $"theirs-{compat}.qcow2");
            QemuTools.Check("qemu-img", _dir.Directory, "create", "-q", "-f", "qcow2", "-o", $"compat={compat}", theirs, "8M");
            Assert.False(Qcow2Image.HoldsData(theirs));
            QemuTools.Io(_dir.Directory, theirs, "write -P 7 4M 4k", "discard 4M 4k");
            Assert.True(Qcow2Image.HoldsData(theirs));
        }

        string snapshotted = Path.Combine(_dir.Directory, "snap.qcow2");
        QemuTools.Check("qemu-img", _dir.Directory, "create", "-q", "-f", "qcow2", snapshotted, "8M");
        QemuTools.Check("qemu-img", _dir.Directory, "snapshot", "-c", "s1", snapshotted);
        Assert.True(Qcow2Image.HoldsData(snapshotted));

        File.WriteAllBytes(Path.Combine(_dir.Directory, "not.qcow2"), new byte[4096]);
        Assert.Throws<BlockDeviceException>(() => Qcow2Image.HoldsData(Path.Combine(_dir.Directory, "not.qcow2")));
    }

    [Theory]
    [InlineData(64 * KiB, false, 1)]
    [InlineData(4 * KiB, false, 2)]
    [InlineData(512, false, 3)]
    [InlineData(64 * KiB, true, 4)]
    [InlineData(4 * KiB, true, 5)]
    public void RandomWritesDiscardsZeroesAndResizesMatchARawModel(int clusterSize, bool withBacking, int seed)
    {
        var random = new Random(seed);
        string image = Path.Combine(_dir.Directory, "random.qcow2");
        var model = new DiskModel(clusterSize);
        if (withBacking)
        {
            var baseData = new byte[3 * MiB];
            random.NextBytes(baseData);
            File.WriteAllBytes(Path.Combine(_dir.Directory, "base.raw"), baseData);
            Qcow2Image.Create(image, 4 * MiB, "base.raw", "raw", clusterSize);
            model.Data = new byte[4 * MiB];
            baseData.CopyTo(model.Data, 0);
        }
        else
        {
            Qcow2Image.Create(image, 4 * MiB, clusterSize: clusterSize);
            model.Data = new byte[4 * MiB];
        }

        var disk = Qcow2BlockDevice.Open(image, readOnly: false);
        try
        {
            for (int step = 0; step < 400; step++)
            {
                model.RandomStep(disk, random, allowResize: step % 100 == 50);
                if (step % 97 == 96)
                {
                    disk.Dispose();
                    AssertChecksClean(image);
                    disk = Qcow2BlockDevice.Open(image, readOnly: false);
                }
            }

            model.AssertSame(disk);
        }
        finally
        {
            disk.Dispose();
        }

        AssertChecksClean(image);
        AssertQemuReads(model, image);
    }

    [Fact]
    public void QemuAndHostVmWriteOneImageInTurns()
    {
        string image = Path.Combine(_dir.Directory, "turns.qcow2");
        Qcow2Image.Create(image, 8 * MiB);
        var model = new DiskModel(64 * KiB) { Data = new byte[8 * MiB] };
        var random = new Random(9);
        for (int turn = 0; turn < 4; turn++)
        {
            // qemu-io writes a pattern, zeroes a range and discards one; the model follows what QEMU documents.
            long at = random.Next(8 * MiB / 4096 - 64) * 4096L;
            QemuTools.Io(_dir.Directory, image, $"write -P 0x{0x30 + turn:x2} {at} 200k", $"write -z {at + (64 * KiB)} 64k");
            model.Data.AsSpan((int)at, 200 * KiB).Fill((byte)(0x30 + turn));
            model.Data.AsSpan((int)at + (64 * KiB), 64 * KiB).Clear();

            using (var disk = Qcow2BlockDevice.Open(image, readOnly: false))
            {
                model.AssertSame(disk);
                for (int i = 0; i < 30; i++)
                {
                    model.RandomStep(disk, random, allowResize: false);
                }
            }

            AssertChecksClean(image);
        }

        AssertQemuReads(model, image);
    }

    [Fact]
    public void ImagesQemuMadeAreWrittenInPlaceOrCopiedOnWrite()
    {
        // A compressed image and an overlay over a qcow2 base, both made by qemu-img; HostVM writes them.
        var source = new byte[6 * MiB];
        new Random(4).NextBytes(source);
        source.AsSpan(MiB, MiB).Clear();
        string raw = Path.Combine(_dir.Directory, "source.raw");
        File.WriteAllBytes(raw, source);
        string compressed = Path.Combine(_dir.Directory, "compressed.qcow2");
        QemuTools.Check("qemu-img", _dir.Directory, "convert", "-c", "-f", "raw", "-O", "qcow2", raw, compressed);
        string overlay = Path.Combine(_dir.Directory, "overlay.qcow2");
        QemuTools.Check("qemu-img", _dir.Directory, "create", "-f", "qcow2", "-b", "compressed.qcow2", "-F", "qcow2", overlay);
        byte[] baseBefore = File.ReadAllBytes(compressed);

        foreach (string image in new[] { overlay, compressed })
        {
            var model = new DiskModel(64 * KiB) { Data = (byte[])source.Clone() };
            var random = new Random(image.Length);
            using (var disk = Qcow2BlockDevice.Open(image, readOnly: false))
            {
                for (int i = 0; i < 150; i++)
                {
                    model.RandomStep(disk, random, allowResize: false);
                }

                model.AssertSame(disk);
            }

            AssertChecksClean(image);
            AssertQemuReads(model, image);
            if (image == overlay)
            {
                Assert.Equal(baseBefore, File.ReadAllBytes(compressed));
            }
        }
    }

    [Fact]
    public void TheRefcountTableAndTheL1TableGrowBesideTheOldOnes()
    {
        // 512-byte clusters: one refcount block counts 128 KiB, one table cluster 8 MiB, one L1 cluster 2 MiB.
        string image = Path.Combine(_dir.Directory, "grow.qcow2");
        Qcow2Image.Create(image, MiB, clusterSize: 512);
        var model = new DiskModel(512) { Data = new byte[MiB] };
        var random = new Random(11);
        using (var disk = Qcow2BlockDevice.Open(image, readOnly: false))
        {
            long tableBefore = disk.Header.L1TableOffset;
            disk.Resize(40 * MiB);
            Array.Resize(ref model.Data, 40 * MiB);
            Assert.NotEqual(tableBefore, disk.Header.L1TableOffset);
            var chunk = new byte[256 * KiB];
            for (long at = 0; at < 24 * MiB; at += 3 * chunk.Length / 2)
            {
                random.NextBytes(chunk);
                disk.Write(at, chunk);
                chunk.CopyTo(model.Data, at);
            }

            disk.Flush();
            model.AssertSame(disk);
        }

        byte[] header = new byte[64];
        using (var file = File.OpenRead(image))
        {
            file.ReadExactly(header);
        }

        Assert.NotEqual(512UL, BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(48))); // the refcount table moved
        AssertChecksClean(image);
        AssertQemuReads(model, image);
        Assert.Throws<ArgumentException>(() =>
        {
            using var disk = Qcow2BlockDevice.Open(image, readOnly: false);
            disk.Resize(MiB);
        });
    }

    [Fact]
    public void EveryMomentOfAWriteSequenceIsConsistentAndKeepsWhatWasFlushed()
    {
        foreach (int clusterSize in new[] { 4 * KiB, 64 * KiB })
        {
            CrashAtEveryWrite(clusterSize);
        }
    }

    [Fact]
    public void AFailedFsyncFailsEveryLaterFlushAndTheImageStaysUsable()
    {
        string image = Path.Combine(_dir.Directory, "latched.qcow2");
        Qcow2Image.Create(image, 4 * MiB);
        using (var disk = Qcow2BlockDevice.Open(image, readOnly: false))
        {
            disk.Write(0, new byte[64 * KiB]);
            disk.FlushToDisk = _ => throw new IOException("EIO (simulated)");
            Assert.Throws<IOException>(disk.Flush);
            disk.FlushToDisk = RandomAccess.FlushToDisk;
            var e = Assert.Throws<IOException>(disk.Flush);
            Assert.Contains("an earlier flush failed", e.Message, StringComparison.Ordinal);
        }

        // Closed without its last write-back: marked dirty; the next writer repairs its counts.
        using (var handle = File.OpenHandle(image))
        {
            Assert.True(Qcow2Header.Read(handle, image).Dirty);
        }

        using (var disk = Qcow2BlockDevice.Open(image, readOnly: false))
        {
            disk.Write(MiB, new byte[4 * KiB]);
        }

        AssertChecksClean(image);
    }

    [Fact]
    public void WhileOpenForWritingTheImageIsMarkedDirtyAndLocked()
    {
        string image = Path.Combine(_dir.Directory, "dirty.qcow2");
        Qcow2Image.Create(image, MiB);
        using (var disk = Qcow2BlockDevice.Open(image, readOnly: false))
        {
            var copy = new byte[4096];
            RandomAccess.Read(disk.Handle, copy, 0);
            Assert.Equal(1UL, BinaryPrimitives.ReadUInt64BigEndian(copy.AsSpan(72)) & 1);
            var e = Assert.Throws<BlockDeviceException>(() => Qcow2BlockDevice.Open(image, readOnly: true));
            Assert.Contains("in use", e.Message, StringComparison.Ordinal);
        }

        using var again = Qcow2BlockDevice.Open(image, readOnly: true);
        Assert.False(again.Header.Dirty);
    }

    private void CrashAtEveryWrite(int clusterSize)
    {
        string image = Path.Combine(_dir.Directory, $"crash-{clusterSize}.qcow2");
        var random = new Random(clusterSize);
        var baseData = new byte[2 * MiB];
        random.NextBytes(baseData);
        File.WriteAllBytes(Path.Combine(_dir.Directory, "crash-base.raw"), baseData);
        Qcow2Image.Create(image, 3 * MiB, "crash-base.raw", "raw", clusterSize);
        var model = new DiskModel(clusterSize) { Data = new byte[3 * MiB] };
        baseData.CopyTo(model.Data, 0);

        // Each copy: the file after one write, with the model as of the last completed flush and the bytes changed since.
        var copies = new List<(string Path, byte[] Flushed, bool[] Changed, long Size)>();
        byte[] flushed = (byte[])model.Data.Clone();
        long flushedSize = model.Data.Length;
        model.Changed = new bool[model.Data.Length / 512];
        int writes = 0;
        var disk = Qcow2BlockDevice.Open(image, readOnly: false);
        Qcow2Io.AfterWrite = () =>
        {
            if (++writes % 3 != 0 && random.Next(4) != 0)
            {
                return;
            }

            long length = RandomAccess.GetLength(disk.Handle);
            var bytes = new byte[length];
            RandomAccess.Read(disk.Handle, bytes, 0);
            string path = Path.Combine(_dir.Directory, $"copy-{copies.Count}.qcow2");
            File.WriteAllBytes(path, bytes);
            copies.Add((path, flushed, model.Changed!, flushedSize));
        };
        try
        {
            for (int batch = 0; batch < 8; batch++)
            {
                for (int i = 0; i < 12; i++)
                {
                    model.RandomStep(disk, random, allowResize: batch == 4 && i == 0, flush: false);
                }

                disk.Flush();
                flushed = (byte[])model.Data.Clone();
                flushedSize = model.Data.Length;
                model.Changed = new bool[model.Data.Length / 512];
            }
        }
        finally
        {
            Qcow2Io.AfterWrite = null;
            disk.Dispose();
        }

        Assert.True(copies.Count > 60, $"only {copies.Count} moments copied");
        int i2 = 0;
        foreach (var (path, expected, dirty, size) in copies)
        {
            // qemu-img check: 0 is clean, 3 is leaked clusters only; anything else is corruption.
            var (code, output) = QemuTools.Run("qemu-img", _dir.Directory, "check", "-f", "qcow2", path);
            Assert.True(code is 0 or 3, $"moment {i2} of {copies.Count} (cluster {clusterSize}): qemu-img check says {code}: {output}");
            string raw = path + ".raw";
            QemuTools.Check("qemu-img", _dir.Directory, "convert", "-f", "qcow2", "-O", "raw", path, raw);
            byte[] actual = File.ReadAllBytes(raw);
            Assert.True(actual.Length >= size, $"moment {i2}: the disk is {actual.Length} bytes, {size} were flushed");
            for (int sector = 0; sector < size / 512; sector++)
            {
                if (!dirty[sector] && !actual.AsSpan(sector * 512, 512).SequenceEqual(expected.AsSpan(sector * 512, 512)))
                {
                    Assert.Fail($"moment {i2} (cluster {clusterSize}): flushed sector {sector} is not there");
                }
            }

            if (i2 % 8 == 0)
            {
                // HostVM opens the crashed image for writing: its counts are repaired, no leak remains.
                using (var reopened = Qcow2BlockDevice.Open(path, readOnly: false))
                {
                    reopened.Write(0, new byte[512]);
                }

                AssertChecksClean(path);
            }

            File.Delete(path);
            File.Delete(raw);
            i2++;
        }
    }

    private void AssertChecksClean(string image)
    {
        var (code, output) = QemuTools.Run("qemu-img", _dir.Directory, "check", "-f", "qcow2", image);
        Assert.True(code == 0 && output.Contains("No errors were found", StringComparison.Ordinal), $"qemu-img check {image} ({code}): {output}");
    }

    /// <summary>qemu-img compare: QEMU reads the image exactly as the model says.</summary>
    private void AssertQemuReads(DiskModel model, string image)
    {
        string expected = Path.Combine(_dir.Directory, "expected.raw");
        File.WriteAllBytes(expected, model.Data);
        Assert.Contains("Images are identical", QemuTools.Check("qemu-img", _dir.Directory, "compare", "-f", "raw", "-F", "qcow2", expected, image), StringComparison.Ordinal);
    }

    private JsonElement Info(string image) =>
        JsonDocument.Parse(QemuTools.Check("qemu-img", _dir.Directory, "info", "--output=json", image)).RootElement;

    /// <summary>The disk as it should read: a byte array the same operations are applied to.</summary>
    private sealed class DiskModel(int clusterSize)
    {
        public byte[] Data = [];

        /// <summary>Sectors touched since the last flush (for the crash test), or null.</summary>
        public bool[]? Changed { get; set; }

        public void RandomStep(Qcow2BlockDevice disk, Random random, bool allowResize, bool flush = true)
        {
            int size = Data.Length;
            int kind = random.Next(100);
            if (allowResize)
            {
                int grown = size + (random.Next(1, 64) * 64 * KiB) + (random.Next(8) * 512);
                disk.Resize(grown);
                Array.Resize(ref Data, grown);
                if (Changed is { } changed)
                {
                    Array.Resize(ref changed, grown / 512);
                    Changed = changed;
                }

                return;
            }

            if (kind < 60)
            {
                int at = random.Next(size), length = Math.Min(size - at, random.Next(1, 3) == 1 ? random.Next(1, 5000) : random.Next(1, 300 * KiB));
                var bytes = new byte[length];
                random.NextBytes(bytes);
                if (random.Next(2) == 0)
                {
                    disk.Write(at, bytes);
                }
                else
                {
                    disk.Write(at, Split(bytes, random).Select(m => (ReadOnlyMemory<byte>)m).ToList()); // as a guest's pages come
                }

                bytes.CopyTo(Data, at);
                Touch(at, length);
            }
            else if (kind < 70)
            {
                int at = random.Next(size / 512) * 512, length = Math.Min(size - at, random.Next(1, 600) * 512);
                disk.Discard(at, length);
                ApplyWholeClusters(at, length);
                Touch(at, length);
            }
            else if (kind < 85)
            {
                int at = random.Next(size), length = Math.Min(size - at, random.Next(1, 400 * KiB));
                disk.WriteZeroes(at, length, mayUnmap: random.Next(2) == 0);
                Data.AsSpan(at, length).Clear();
                Touch(at, length);
            }
            else if (kind < 95)
            {
                int at = random.Next(size), length = Math.Min(size - at, random.Next(1, 200 * KiB));
                var bytes = new byte[length];
                if (random.Next(2) == 0)
                {
                    disk.Read(at, bytes);
                }
                else
                {
                    disk.Read(at, Split(bytes, random));
                }

                Assert.True(bytes.AsSpan().SequenceEqual(Data.AsSpan(at, length)), $"read {at}+{length} differs from the model");
            }
            else if (flush)
            {
                disk.Flush();
            }
        }

        /// <summary>One to five consecutive pieces of <paramref name="bytes"/>, of random lengths.</summary>
        private static List<Memory<byte>> Split(byte[] bytes, Random random)
        {
            var pieces = new List<Memory<byte>>();
            int at = 0;
            for (int left = random.Next(1, 6); left > 1 && at < bytes.Length; left--)
            {
                int n = random.Next(0, bytes.Length - at);
                pieces.Add(bytes.AsMemory(at, n));
                at += n;
            }

            pieces.Add(bytes.AsMemory(at));
            return pieces;
        }

        public void AssertSame(IBlockDevice disk)
        {
            Assert.Equal(Data.Length, disk.Length);
            var all = new byte[Data.Length];
            disk.Read(0, all);
            int same = all.AsSpan().CommonPrefixLength(Data);
            Assert.True(same == Data.Length, $"first difference at byte {same}");
        }

        // A discard frees whole clusters, which then read as zeroes (with or without a backing file); partial ones keep their data.
        private void ApplyWholeClusters(int at, int length)
        {
            long first = (at + clusterSize - 1L) / clusterSize * clusterSize;
            long end = (at + length) / clusterSize * clusterSize;
            if (at + length == Data.Length)
            {
                end = Data.Length;
            }

            if (end > first)
            {
                Data.AsSpan((int)first, (int)(end - first)).Clear();
            }
        }

        private void Touch(int at, int length)
        {
            if (Changed is null)
            {
                return;
            }

            for (int s = at / 512; s <= (at + length - 1) / 512 && s < Changed.Length; s++)
            {
                Changed[s] = true;
            }
        }
    }
}
