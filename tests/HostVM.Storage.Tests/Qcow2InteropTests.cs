using System.Buffers.Binary;
using HostVM.Storage.Qcow2;

namespace HostVM.Storage.Tests;

/// <summary>
/// qcow2 images made by QEMU's own tools (qemu-img, qemu-io: an independent peer) read in HostVM exactly as
/// <c>qemu-img convert -O raw</c> reads them; images HostVM cannot read are refused with one line naming the
/// file and the problem, and a table pointing outside the file is an I/O error, never a read elsewhere.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class Qcow2InteropTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TempImage _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("compat=1.1,cluster_size=65536", false)]
    [InlineData("compat=0.10,cluster_size=65536", false)] // version 2
    [InlineData("compat=1.1,cluster_size=512", false)]
    [InlineData("compat=1.1,cluster_size=2097152", false)]
    [InlineData("compat=1.1,cluster_size=65536", true)] // compressed clusters
    [InlineData("compat=1.1,cluster_size=4096", true)]
    public void AnImageQemuImgConvertedReadsAsTheRawItCameFrom(string options, bool compressed)
    {
        string raw = RawWithData("source.raw", 6 * MiB, seed: options.Length + (compressed ? 1 : 0));
        string qcow2 = Path.Combine(_dir.Directory, "converted.qcow2");
        QemuImg(["convert", "-f", "raw", "-O", "qcow2", "-o", options, .. compressed ? new[] { "-c" } : [], raw, qcow2]);

        using var disk = DiskImage.Open(qcow2, readOnly: true);
        var header = Assert.IsType<Qcow2BlockDevice>(disk).Header;
        Assert.Equal(options.StartsWith("compat=0.10", StringComparison.Ordinal) ? 2 : 3, header.Version);
        AssertSameContent(File.ReadAllBytes(raw), disk);
    }

    [Fact]
    public void AChainOfThreeReadsAsQemuReadsIt()
    {
        // base (raw) ← middle (qcow2 over raw) ← top (qcow2 over qcow2), each layer written by qemu-io, with zero clusters and discards.
        string baseRaw = RawWithData("base.raw", 4 * MiB, seed: 7);
        string middle = Path.Combine(_dir.Directory, "middle.qcow2");
        string top = Path.Combine(_dir.Directory, "top.qcow2");
        QemuImg(["create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", middle]);
        QemuIo(middle, "write -P 0x11 0 64k", "write -P 0x22 1000k 300k", "write -z 2M 128k", "write -P 0x33 4032k 64k");
        QemuImg(["create", "-f", "qcow2", "-b", "middle.qcow2", "-F", "qcow2", top, "6M"]); // larger than its backing
        QemuIo(top, "write -P 0x44 32k 96k", "write -z 1M 64k", "discard 3M 128k", "write -P 0x55 5M 64k");

        string flat = Path.Combine(_dir.Directory, "flat.raw");
        QemuImg(["convert", "-O", "raw", top, flat]);
        using var disk = DiskImage.Open(top, readOnly: true);
        Assert.Equal(6 * MiB, disk.Length);
        AssertSameContent(File.ReadAllBytes(flat), disk);
        Assert.IsType<RawFileBlockDevice>(((Qcow2BlockDevice)((Qcow2BlockDevice)disk).Backing!).Backing);
    }

    [Fact]
    public void ARecordedChainIsOpenedAndAHeaderThatNamesAnythingElseIsRefused()
    {
        string baseRaw = RawWithData("base.raw", MiB, seed: 3);
        string middle = Path.Combine(_dir.Directory, "middle.qcow2");
        string top = Path.Combine(_dir.Directory, "top.qcow2");
        QemuImg(["create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", middle]);
        QemuImg(["create", "-f", "qcow2", "-b", "middle.qcow2", "-F", "qcow2", top]);
        (string, string)[] recorded = [(middle, "qcow2"), (baseRaw, "raw")];
        using (var disk = DiskImage.OpenRecorded(top, readOnly: false, "qcow2", recorded))
        {
            AssertSameContent(File.ReadAllBytes(baseRaw), disk);
        }

        // What a VMM that had the file could do: name a host file as its backing file (with or without a format), or
        // another file of the chain. (Cutting the chain opens nothing: the image then stands alone, as a finished stream leaves it.)
        string secret = Path.Combine(_dir.Directory, "secret");
        File.WriteAllText(secret, "the host's");
        foreach (string[] rebase in new string[][] { ["-b", secret, "-F", "raw"], ["-b", "secret", "-F", "qcow2"], ["-b", "base.raw", "-F", "raw"], ["-b", "middle.qcow2", "-F", "raw"] })
        {
            QemuImg(["rebase", "-u", .. rebase, top]);
            var refused = Assert.Throws<BlockDeviceException>(() => DiskImage.OpenRecorded(top, readOnly: true, "qcow2", recorded));
            Assert.Contains("refused", refused.Message, StringComparison.Ordinal);
        }

        // One level down too: the middle's header is checked against the record as well.
        QemuImg(["rebase", "-u", "-b", "middle.qcow2", "-F", "qcow2", top]);
        QemuImg(["rebase", "-u", "-b", secret, "-F", "raw", middle]);
        Assert.Throws<BlockDeviceException>(() => DiskImage.OpenRecorded(top, readOnly: true, "qcow2", recorded));
        Assert.Throws<BlockDeviceException>(() => DiskImage.OpenRecorded(top, readOnly: true, "qcow2", [(middle, "qcow2")]));
        Assert.Throws<BlockDeviceException>(() => DiskImage.OpenRecorded(baseRaw, readOnly: true, "raw", recorded));
    }

    [Fact]
    public async Task AnOverlayOnARecordedBaseIsMadeWithoutOpeningWhatTheBasesHeaderNames()
    {
        // A base whose header names a FIFO: following it would block (or read a host file); not opening it cannot.
        string fifo = Path.Combine(_dir.Directory, "fifo");
        Assert.Equal(0, QemuTools.Run("mkfifo", _dir.Directory, fifo).ExitCode);
        string base_ = Path.Combine(_dir.Directory, "base.qcow2");
        QemuImg(["create", "-f", "qcow2", base_, "1M"]);
        QemuImg(["rebase", "-u", "-b", fifo, "-F", "raw", base_]);
        string overlay = Path.Combine(_dir.Directory, "overlay.qcow2");
        var made = Task.Run(() => Qcow2Image.Create(overlay, MiB, "base.qcow2", "qcow2", openBacking: false));
        await made.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken); // a TimeoutException if it blocked
        using (var handle = File.OpenHandle(overlay))
        {
            var header = Qcow2Header.Read(handle, overlay);
            Assert.Equal(("base.qcow2", "qcow2"), (header.BackingFile, header.BackingFormat));
        }

        Assert.Throws<BlockDeviceException>(() => Qcow2Image.Create(Path.Combine(_dir.Directory, "o2.qcow2"), MiB, "base.qcow2", null, openBacking: false));
        Assert.Throws<BlockDeviceException>(() => Qcow2Image.Create(Path.Combine(_dir.Directory, "o3.qcow2"), MiB, "gone.qcow2", "qcow2", openBacking: false));
    }

    [Fact]
    public void AQcow2FileOpenedAsRawIsNeverProbed()
    {
        string qcow2 = Path.Combine(_dir.Directory, "guest-made.qcow2");
        QemuImg(["create", "-f", "qcow2", qcow2, "1M"]);
        using (var file = new FileStream(qcow2, FileMode.Open))
        {
            file.SetLength((file.Length + 511) / 512 * 512); // as a raw disk is: whole sectors
        }

        using var disk = DiskImage.Open(qcow2, readOnly: true, format: "raw");
        Assert.IsType<RawFileBlockDevice>(disk);
        var first = new byte[4];
        disk.Read(0, first);
        Assert.Equal(Qcow2Header.Magic, BinaryPrimitives.ReadUInt32BigEndian(first)); // the guest sees the file's bytes
    }

    [Fact]
    public void WritingVersion2OrBesideInternalSnapshotsIsRefusedClearly()
    {
        string v2 = Path.Combine(_dir.Directory, "v2.qcow2");
        QemuImg(["create", "-f", "qcow2", "-o", "compat=0.10", v2, "1M"]);
        var e = Assert.Throws<BlockDeviceException>(() => DiskImage.Open(v2, readOnly: false));
        Assert.Contains("version 2", e.Message, StringComparison.Ordinal);
        using (var disk = DiskImage.Open(v2, readOnly: true))
        {
            Assert.True(disk.ReadOnly);
            Assert.Throws<IOException>(() => disk.Write(0, new byte[512]));
        }

        string snapshots = Path.Combine(_dir.Directory, "snap.qcow2");
        QemuImg(["create", "-f", "qcow2", snapshots, "1M"]);
        QemuImg(["snapshot", "-c", "first", snapshots]);
        e = Assert.Throws<BlockDeviceException>(() => DiskImage.Open(snapshots, readOnly: false));
        Assert.Contains("1 internal snapshots", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadHeadersAndChainsAreRefusedWithOneLineNamingTheProblem()
    {
        string good = Path.Combine(_dir.Directory, "good.qcow2");
        QemuImg(["create", "-f", "qcow2", good, "4M"]);
        byte[] original = File.ReadAllBytes(good);

        AssertRefused(Patched(original, "magic.qcow2", b => b[0] = 0), "bad magic", raw: true);
        AssertRefused(Patched(original, "version.qcow2", b => BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(4), 4)), "version 4");
        AssertRefused(Patched(original, "cluster.qcow2", b => BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(20), 30)), "cluster_bits 30");
        AssertRefused(Patched(original, "l1.qcow2", b => BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(40), 1UL << 40)), "L1 table");
        AssertRefused(Patched(original, "l1size.qcow2", b => BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(36), 0)), "L1 table has 0 entries");
        AssertRefused(Patched(original, "feature.qcow2", b => BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(72), 1UL << 40)), "incompatible features");
        AssertRefused(Patched(original, "corrupt.qcow2", b => BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(72), 2)), "marked it corrupt");
        AssertRefused(Patched(original, "crypt.qcow2", b => BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(32), 1)), "encrypted");
        AssertRefused(Patched(original, "short.qcow2", b => { }, length: 40), "bad magic or too short");

        // Backing chains: a missing file, the image itself, a loop of two.
        string missing = Path.Combine(_dir.Directory, "missing.qcow2");
        _dir.Create(MiB, "nowhere.raw");
        QemuImg(["create", "-f", "qcow2", "-b", "nowhere.raw", "-F", "raw", missing, "1M"]);
        File.Delete(Path.Combine(_dir.Directory, "nowhere.raw"));
        AssertRefused(missing, "'" + Path.Combine(_dir.Directory, "nowhere.raw") + "' does not exist");
        string self = Path.Combine(_dir.Directory, "self.qcow2");
        QemuImg(["create", "-f", "qcow2", self, "1M"]);
        QemuImg(["rebase", "-u", "-b", "self.qcow2", "-F", "qcow2", self]);
        AssertRefused(self, "loops back");
        string a = Path.Combine(_dir.Directory, "a.qcow2"), b = Path.Combine(_dir.Directory, "b.qcow2");
        QemuImg(["create", "-f", "qcow2", a, "1M"]);
        QemuImg(["create", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", b, "1M"]);
        QemuImg(["rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", a]);
        AssertRefused(b, "loops back");
    }

    [Fact]
    public void TablesPointingOutsideTheFileAreIoErrorsOfThatReadOnly()
    {
        string qcow2 = Path.Combine(_dir.Directory, "tables.qcow2");
        QemuImg(["create", "-f", "qcow2", qcow2, "4M"]);
        QemuIo(qcow2, "write -P 0x66 0 64k", "write -P 0x77 2M 64k");
        byte[] bytes = File.ReadAllBytes(qcow2);
        long l1 = (long)BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(40));
        long l2 = (long)(BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan((int)l1)) & 0x00ff_ffff_ffff_fe00);

        // The first data cluster's entry now points 1 TiB away: that read fails, the other cluster still reads.
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan((int)l2), (1UL << 63) | (1UL << 40));
        File.WriteAllBytes(qcow2, bytes);
        using var disk = DiskImage.Open(qcow2, readOnly: true);
        var e = Assert.Throws<IOException>(() => disk.Read(0, new byte[512]));
        Assert.Contains("corrupt", e.Message, StringComparison.Ordinal);
        var other = new byte[512];
        disk.Read(2 * MiB, other);
        Assert.All(other, x => Assert.Equal(0x77, x));
    }

    [Fact]
    public void CorruptedHeadersAndTablesNeverThrowAnythingButIoErrors()
    {
        string raw = RawWithData("fuzz.raw", 2 * MiB, seed: 3);
        string qcow2 = Path.Combine(_dir.Directory, "fuzz.qcow2");
        QemuImg(["convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", raw, qcow2]);
        byte[] original = File.ReadAllBytes(qcow2);
        string mutant = Path.Combine(_dir.Directory, "mutant.qcow2");
        var random = new Random(12345);
        var buffer = new byte[2 * MiB];
        int opened = 0;
        for (int round = 0; round < 400; round++)
        {
            // A few bytes changed in the metadata (header, L1, refcounts, the first L2 tables) or a whole 8-byte entry set.
            var bytes = (byte[])original.Clone();
            for (int k = random.Next(1, 6); k > 0; k--)
            {
                int at = random.Next(Math.Min(bytes.Length - 8, 64 * 1024));
                if (random.Next(2) == 0)
                {
                    bytes[at] = (byte)random.Next(256);
                }
                else
                {
                    BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(at & ~7), (ulong)random.NextInt64() << random.Next(8));
                }
            }

            File.WriteAllBytes(mutant, bytes);
            IBlockDevice disk;
            try
            {
                disk = Qcow2BlockDevice.Open(mutant, readOnly: true);
            }
            catch (BlockDeviceException)
            {
                continue;
            }

            opened++;
            using (disk)
            {
                for (long at = 0; at < Math.Min(disk.Length, 8L * MiB); at += buffer.Length)
                {
                    try
                    {
                        disk.Read(at, buffer.AsSpan(0, (int)Math.Min(buffer.Length, disk.Length - at)));
                    }
                    catch (IOException)
                    {
                        // That read fails; the next may not.
                    }
                }
            }
        }

        Assert.True(opened > 100, $"only {opened} of 400 mutants opened: the fuzz reached too little of the read path");
    }

    private void AssertRefused(string path, string says, bool raw = false)
    {
        var e = Assert.Throws<BlockDeviceException>(() => Qcow2BlockDevice.Open(path, readOnly: true));
        Assert.Contains(says, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains(raw ? path : "qcow2 image", e.Message, StringComparison.Ordinal);
    }

    private string Patched(byte[] original, string name, Action<byte[]> patch, int? length = null)
    {
        var copy = original[..(length ?? original.Length)];
        patch(copy);
        string path = Path.Combine(_dir.Directory, name);
        File.WriteAllBytes(path, copy);
        return path;
    }

    /// <summary>A raw file of random data with holes (runs of zeroes) and repeated runs, as a used disk has.</summary>
    private string RawWithData(string name, int size, int seed)
    {
        var random = new Random(seed);
        var data = new byte[size];
        random.NextBytes(data);
        for (int i = 0; i < 12; i++)
        {
            int at = random.Next(size / 4096) * 4096, length = Math.Min(size - at, random.Next(1, 64) * 4096);
            data.AsSpan(at, length).Fill(i % 3 == 0 ? (byte)0x5a : (byte)0);
        }

        string path = Path.Combine(_dir.Directory, name);
        File.WriteAllBytes(path, data);
        return path;
    }

    private static void AssertSameContent(byte[] expected, IBlockDevice disk)
    {
        Assert.Equal(expected.Length, disk.Length);
        var actual = new byte[expected.Length];
        var random = new Random(1);
        // Reads of odd sizes and places (crossing clusters, inside one), then the whole disk in one call.
        for (int i = 0; i < 200; i++)
        {
            int at = random.Next(expected.Length / 512) * 512, length = Math.Min(expected.Length - at, random.Next(1, 300) * 512);
            disk.Read(at, actual.AsSpan(at, length));
            Assert.True(expected.AsSpan(at, length).SequenceEqual(actual.AsSpan(at, length)), $"bytes {at}+{length} differ");
        }

        disk.Read(0, actual);
        int first = expected.AsSpan().CommonPrefixLength(actual);
        Assert.True(first == expected.Length, $"first difference at byte {first}");
    }

    private void QemuImg(string[] args) => QemuTools.Check("qemu-img", _dir.Directory, args);

    private void QemuIo(string image, params string[] commands) => QemuTools.Io(_dir.Directory, image, commands);
}
