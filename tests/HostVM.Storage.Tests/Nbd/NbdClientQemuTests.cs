using HostVM.Storage.Nbd;

namespace HostVM.Storage.Tests.Nbd;

/// <summary>
/// HostVM's NBD client against QEMU's servers (qemu-nbd, qemu-storage-daemon: independent peers): random I/O lands
/// in the image exactly as qemu-img reads it back afterwards, block status shows what was written, a read-only
/// export refuses writes.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class NbdClientQemuTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TempImage _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("raw")]
    [InlineData("qcow2")]
    public void RandomIoThroughQemuNbdIsWhatQemuImgReadsBack(string format)
    {
        var (image, model) = Image(format, 8 * MiB, seed: format.Length);
        string socket = Path.Combine(_dir.Directory, "nbd.sock");
        using (var peer = NbdPeer.Start("qemu-nbd", $"nbd+unix:///disk?socket={socket}", "-f", format, "-x", "disk", "-k", socket, "--persistent", "--shared=4", image))
        using (var disk = DiskImage.Open(peer.Uri, readOnly: false))
        {
            Assert.IsType<NbdBlockDevice>(disk);
            Assert.Equal(8 * MiB, disk.Length);
            Assert.False(disk.ReadOnly);
            model.RandomIo(disk, seed: 1, operations: 300);
            disk.Flush();
        }

        model.Check(0, ReadBack(image));
    }

    [Fact]
    public void QemuStorageDaemonServesAQcow2FileOverTcpThatTheClientWritesAndReads()
    {
        var (image, model) = Image("qcow2", 8 * MiB, seed: 3);
        int port = NbdPeer.FreePort();
        using (var peer = NbdPeer.Start(
            "qemu-storage-daemon",
            $"nbd://127.0.0.1:{port}/vol",
            "--blockdev", $"driver=file,node-name=file0,filename={image}",
            "--blockdev", "driver=qcow2,node-name=disk0,file=file0",
            "--nbd-server", $"addr.type=inet,addr.host=127.0.0.1,addr.port={port}",
            "--export", "type=nbd,id=exp0,node-name=disk0,name=vol,writable=on"))
        using (var disk = DiskImage.Open(peer.Uri, readOnly: false))
        {
            model.RandomIo(disk, seed: 4, operations: 300, maxSectors: 4096);
            disk.Flush();
        }

        model.Check(0, ReadBack(image));
        QemuTools.Check("qemu-img", _dir.Directory, "check", image);
    }

    [Fact]
    public void BlockStatusShowsWhatWasWrittenAndWhatIsStillAHole()
    {
        string image = Path.Combine(_dir.Directory, "empty.qcow2");
        QemuTools.Check("qemu-img", _dir.Directory, "create", "-f", "qcow2", image, "8M");
        string socket = Path.Combine(_dir.Directory, "nbd.sock");
        using var peer = NbdPeer.Start("qemu-nbd", $"nbd+unix:///disk?socket={socket}", "-f", "qcow2", "-x", "disk", "-k", socket, "--persistent", image);
        using var disk = Assert.IsType<NbdBlockDevice>(DiskImage.Open(peer.Uri, readOnly: false));
        Assert.True(disk.ReportsAllocation);
        disk.Write(MiB, Enumerable.Repeat((byte)0x5a, 128 * 1024).ToArray());
        disk.WriteZeroes(3 * MiB, 64 * 1024, mayUnmap: false);

        var extents = NbdTestExtents.All(disk, 0, disk.Length);
        Assert.All(extents.Where(e => e.Offset < MiB + (128 * 1024) && e.End > MiB), e => Assert.False(e.Hole || e.Zero, $"{e} covers written data"));
        Assert.All(extents.Where(e => e.Offset >= 4 * MiB || e.End <= MiB), e => Assert.True(e.Hole && e.Zero, $"{e} was never written"));
        Assert.All(extents.Where(e => e.Offset < (3 * MiB) + (64 * 1024) && e.End > 3 * MiB), e => Assert.True(e.Zero, $"{e} was zeroed"));

        // A range in the middle of an extent is clipped to what was asked for.
        var middle = disk.MapAllocation(MiB + 4096, 8192);
        Assert.Equal(new BlockExtent(MiB + 4096, 8192, Hole: false, Zero: false), Assert.Single(middle));
    }

    [Fact]
    public void AReadOnlyExportRefusesWritesAndStillReads()
    {
        var (image, model) = Image("raw", 2 * MiB, seed: 5);
        string socket = Path.Combine(_dir.Directory, "nbd.sock");
        using var peer = NbdPeer.Start("qemu-nbd", $"nbd+unix:///ro?socket={socket}", "-r", "-f", "raw", "-x", "ro", "-k", socket, "--persistent", "--shared=2", image);
        using var disk = DiskImage.Open(peer.Uri, readOnly: false);
        Assert.True(disk.ReadOnly);
        Assert.Throws<IOException>(() => disk.Write(0, new byte[512]));
        Assert.Throws<IOException>(() => disk.WriteZeroes(0, 512, mayUnmap: true));
        var all = new byte[2 * MiB];
        disk.Read(0, all);
        model.Check(0, all);

        // The flag itself, as a second connection sees it.
        using var client = NbdClient.Connect(NbdUri.Parse(peer.Uri));
        Assert.True(client.ReadOnly);
    }

    [Fact]
    public void QcowOverNbdAndUnknownExportsAreRefusedWithClearMessages()
    {
        var (image, _) = Image("raw", MiB, seed: 6);
        string socket = Path.Combine(_dir.Directory, "nbd.sock");
        using var peer = NbdPeer.Start("qemu-nbd", $"nbd+unix:///disk?socket={socket}", "-f", "raw", "-x", "disk", "-k", socket, "--persistent", image);
        var e = Assert.Throws<BlockDeviceException>(() => DiskImage.Open(peer.Uri, readOnly: true, format: "qcow2"));
        Assert.Contains("opened as a raw disk", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<BlockDeviceException>(() => DiskImage.Open($"nbd+unix:///nosuch?socket={socket}", readOnly: true));
        Assert.Contains("no export named 'nosuch'", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<BlockDeviceException>(() => DiskImage.Open($"nbd+unix:///disk?socket={socket}.missing", readOnly: true));
        Assert.Contains("cannot connect", e.Message, StringComparison.Ordinal);
    }

    private (string Path, DiskModel Model) Image(string format, int size, int seed)
    {
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes.AsSpan(0, size / 2)); // the second half starts as zeroes (holes in qcow2)
        string raw = Path.Combine(_dir.Directory, "source.raw");
        File.WriteAllBytes(raw, bytes);
        if (format == "raw")
        {
            return (raw, new DiskModel(bytes));
        }

        string qcow2 = Path.Combine(_dir.Directory, "disk.qcow2");
        QemuTools.Check("qemu-img", _dir.Directory, "convert", "-f", "raw", "-O", "qcow2", raw, qcow2);
        return (qcow2, new DiskModel(bytes));
    }

    private byte[] ReadBack(string image)
    {
        string flat = Path.Combine(_dir.Directory, "readback.raw");
        QemuTools.Check("qemu-img", _dir.Directory, "convert", "-O", "raw", image, flat);
        return File.ReadAllBytes(flat);
    }
}
