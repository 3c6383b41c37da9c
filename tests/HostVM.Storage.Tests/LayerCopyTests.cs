using HostVM.Storage.Qcow2;

namespace HostVM.Storage.Tests;

/// <summary>
/// The block jobs' copying (<see cref="LayerCopy"/>) behind a <see cref="SwitchableBlockDevice"/> while another thread
/// keeps writing through it, against a byte model of the guest's disk; qemu-img, an independent reader, checks the files
/// afterwards and compares them with the model.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LayerCopyTests : IDisposable
{
    private const long Size = 8 << 20;
    private readonly TempImage _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A raw base with data, a qcow2 layer over it with more, and an overlay over that with a little: and the model of what the three read.</summary>
    private byte[] MakeChain(Random random)
    {
        var model = new byte[Size];
        random.NextBytes(model.AsSpan(0, (int)(Size / 2)));
        File.WriteAllBytes(Path.Combine(_dir.Directory, "base.img"), model);
        Qcow2Image.Create(Path.Combine(_dir.Directory, "layer.qcow2"), Size, "base.img", "raw", openBacking: false);
        Qcow2Image.Create(Path.Combine(_dir.Directory, "top.qcow2"), Size, "layer.qcow2", "qcow2", openBacking: false);
        foreach (string file in new[] { "layer.qcow2", "top.qcow2" })
        {
            using var disk = Qcow2BlockDevice.Open(Path.Combine(_dir.Directory, file), readOnly: false);
            WriteSome(disk, model, random, 20);
        }

        return model;
    }

    private static void WriteSome(IBlockDevice disk, byte[] model, Random random, int count)
    {
        for (int i = 0; i < count; i++)
        {
            int length = random.Next(1, 40) * 512;
            long offset = random.NextInt64((Size - length) / 512) * 512;
            var data = new byte[length];
            random.NextBytes(data);
            disk.Write(offset, data);
            data.CopyTo(model, offset);
        }
    }

    /// <summary>Runs <paramref name="job"/> while a second thread writes through <paramref name="disk"/> (and the model) until it ends.</summary>
    private static void WhileWriting(SwitchableBlockDevice disk, byte[] model, Action job)
    {
        using var done = new ManualResetEventSlim();
        int writes = 0;
        var writer = new Thread(() =>
        {
            var random = new Random(7);
            while (!done.IsSet || writes < 50)
            {
                WriteSome(disk, model, random, 1);
                writes++;
            }
        });
        writer.Start();
        try
        {
            job();
        }
        finally
        {
            done.Set();
            writer.Join();
        }

        Assert.True(writes >= 50);
    }

    private void AssertReads(string file, byte[] model)
    {
        File.WriteAllBytes(Path.Combine(_dir.Directory, "model.raw"), model);
        var (code, output) = QemuTools.Run("qemu-img", _dir.Directory, "check", file);
        Assert.True(code == 0, output);
        QemuTools.Check("qemu-img", _dir.Directory, "compare", "-f", "qcow2", "-F", "raw", file, "model.raw");
    }

    [Fact]
    public void AStreamWhileTheGuestWritesLeavesAnImageThatStandsAloneAndReadsTheSame()
    {
        var model = MakeChain(new Random(1));
        var top = Qcow2BlockDevice.Open(Path.Combine(_dir.Directory, "top.qcow2"), readOnly: false);
        using (var disk = new SwitchableBlockDevice(top))
        {
            long reported = 0;
            WhileWriting(disk, model, () => LayerCopy.Stream(top, disk.Exclusive, new SyncProgress(v => reported = v), CancellationToken.None));
            disk.Exclusive(top.DropBacking);
            Assert.Null(top.Backing);
            Assert.Equal(Size, reported);
            var read = new byte[Size];
            disk.Read(0, read);
            Assert.True(read.AsSpan().SequenceEqual(model), "the drive reads the model after the stream");
        }

        Assert.DoesNotContain("backing file", QemuTools.Check("qemu-img", _dir.Directory, "info", "top.qcow2"), StringComparison.Ordinal);
        AssertReads("top.qcow2", model);
    }

    [Fact]
    public void ACommitWhileTheGuestWritesLeavesTheLayerBelowReadingWhatTheTopDid()
    {
        var model = MakeChain(new Random(2));
        var layer = Qcow2BlockDevice.Open(Path.Combine(_dir.Directory, "layer.qcow2"), readOnly: false);
        var top = Qcow2BlockDevice.OpenOver(Path.Combine(_dir.Directory, "top.qcow2"), layer);
        using (var disk = new SwitchableBlockDevice(top))
        {
            disk.Replace(top, mirror: layer);
            WhileWriting(disk, model, () => LayerCopy.Commit(top, layer, disk.Exclusive, null, CancellationToken.None));

            // Complete: the layer becomes the drive, the top is closed without its backing file.
            disk.Exclusive(() =>
            {
                Assert.Same(layer, top.DetachBacking());
                top.Dispose();
                disk.Replace(layer);
            });
            var read = new byte[Size];
            disk.Read(0, read);
            Assert.True(read.AsSpan().SequenceEqual(model), "the layer alone reads the model after the commit");
        }

        AssertReads("layer.qcow2", model);
    }

    [Fact]
    public void ACancelledStreamLeavesTheChainReadingTheSame()
    {
        var model = MakeChain(new Random(3));
        using var cancel = new CancellationTokenSource();
        using (var top = Qcow2BlockDevice.Open(Path.Combine(_dir.Directory, "top.qcow2"), readOnly: false))
        {
            Assert.Throws<OperationCanceledException>(() => LayerCopy.Stream(top, a =>
            {
                a();
                cancel.Cancel(); // after the first cluster
            }, null, cancel.Token));
            Assert.NotNull(top.Backing);
        }

        AssertReads("top.qcow2", model);
    }

    [Fact]
    public void AHeaderThatNamesNoBackingFileOpensAgainstARecordedChain()
    {
        MakeChain(new Random(4));
        var chain = new List<(string Path, string Format)> { (Path.Combine(_dir.Directory, "layer.qcow2"), "qcow2"), (Path.Combine(_dir.Directory, "base.img"), "raw") };
        using (var top = Qcow2BlockDevice.Open(Path.Combine(_dir.Directory, "top.qcow2"), readOnly: false, chain))
        {
            top.DropBacking();
        }

        // A stream the daemon did not see end: the file stands alone, which opens nothing the record names.
        using var again = Qcow2BlockDevice.Open(Path.Combine(_dir.Directory, "top.qcow2"), readOnly: true, chain);
        Assert.Null(again.Backing);
        QemuTools.Check("qemu-img", _dir.Directory, "rebase", "-u", "-b", "/etc/passwd", "-F", "raw", "top.qcow2");
        Assert.Throws<BlockDeviceException>(() => Qcow2BlockDevice.Open(Path.Combine(_dir.Directory, "top.qcow2"), readOnly: true, chain).Dispose());
    }

    private sealed class SyncProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
