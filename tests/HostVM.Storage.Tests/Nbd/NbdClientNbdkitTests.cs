using HostVM.Storage.Nbd;

namespace HostVM.Storage.Tests.Nbd;

/// <summary>
/// HostVM's NBD client against nbdkit (another independent server): its memory plugin, a block size policy that
/// forces splitting and read-modify-write, injected errors and delays, and a server killed and started again. A failing
/// server is an <see cref="IOException"/> within a bound, never a hang.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class NbdClientNbdkitTests : IDisposable
{
    private const int MiB = 1 << 20;
    private static readonly TimeSpan NoHang = TimeSpan.FromSeconds(60);
    private readonly TempImage _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void RandomIoOnTheMemoryPluginAndItsHoles()
    {
        using var peer = Nbdkit("memory", "16M");
        using var disk = NbdBlockDevice.Open(NbdUri.Parse(peer.Uri), readOnly: false);
        var model = new DiskModel(new byte[16 * MiB]);
        model.RandomIo(disk, seed: 11, operations: 400, maxSectors: 2048);
        var all = new byte[16 * MiB];
        disk.Read(0, all);
        model.Check(0, all);

        Assert.True(disk.ReportsAllocation);
        disk.WriteZeroes(0, 16 * MiB, mayUnmap: true);
        disk.Write(5 * MiB, new byte[] { 1, 2, 3 }.Concat(new byte[509]).ToArray());
        var extents = NbdTestExtents.All(disk, 0, disk.Length);
        Assert.Contains(extents, e => e.Offset <= 5 * MiB && e.End > 5 * MiB && !e.Hole && !e.Zero);
        Assert.Contains(extents, e => e.Offset <= 6 * MiB && e.End == 16 * MiB && e.Hole && e.Zero);
    }

    [Fact]
    public void RequestsAreSplitAndAlignedToTheServersBlockSizes()
    {
        // The policy filter refuses (EINVAL) anything outside 4 KiB alignment and 64 KiB per request.
        using var peer = Nbdkit("--filter=blocksize-policy", "memory", "16M", "blocksize-minimum=4096", "blocksize-preferred=4096", "blocksize-maximum=65536", "blocksize-error-policy=error");
        using (var client = NbdClient.Connect(NbdUri.Parse(peer.Uri)))
        {
            Assert.Equal(4096, client.MinimumBlockSize);
            Assert.Equal(65536, client.MaximumPayload);
        }

        using var disk = NbdBlockDevice.Open(NbdUri.Parse(peer.Uri), readOnly: false);
        var model = new DiskModel(new byte[16 * MiB]);
        var data = new byte[3 * MiB];
        new Random(12).NextBytes(data);
        disk.Write(512, data); // unaligned at both ends, 48 times the maximum
        model.Bytes.AsSpan(512).Clear();
        data.CopyTo(model.Bytes, 512);
        disk.WriteZeroes(1536, 8192, mayUnmap: false);
        model.Bytes.AsSpan(1536, 8192).Clear();
        model.RandomIo(disk, seed: 13, operations: 200, maxSectors: 512);
        var all = new byte[16 * MiB];
        disk.Read(0, all);
        model.Check(0, all);
    }

    [Fact]
    public async Task AnInjectedErrorIsAnIOExceptionOfThatRequestOnly()
    {
        using var peer = Nbdkit("--filter=error", "memory", "4M", "error-pread=EIO", "error-pread-rate=100%");
        using var disk = NbdBlockDevice.Open(NbdUri.Parse(peer.Uri), readOnly: false);
        var e = await Assert.ThrowsAsync<NbdServerErrorException>(() => Task.Run(() => disk.Read(0, new byte[4096])).WaitAsync(NoHang, TestContext.Current.CancellationToken));
        Assert.Equal(5u, e.Error);
        Assert.Contains("EIO", e.Message, StringComparison.Ordinal);
        disk.Write(0, new byte[4096]); // writes are not failed by this filter: the connection carries on
        disk.Flush();
    }

    [Fact]
    public async Task AServerThatStopsAnsweringFailsTheRequestAfterBoundedRetries()
    {
        using var peer = Nbdkit("--filter=delay", "memory", "4M", "rdelay=30");
        var options = new NbdClientOptions { IoTimeout = TimeSpan.FromSeconds(1), Retries = 2, FirstRetryDelay = TimeSpan.FromMilliseconds(100) };
        using var disk = NbdBlockDevice.Open(NbdUri.Parse(peer.Uri), readOnly: false, options: options);
        var e = await Assert.ThrowsAsync<IOException>(() => Task.Run(() => disk.Read(0, new byte[4096])).WaitAsync(NoHang, TestContext.Current.CancellationToken));
        Assert.Contains("after 3 attempts", e.Message, StringComparison.Ordinal);
        Assert.Contains("no answer within the I/O timeout", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AServerKilledMidRunFailsRequestsThenServesAgainOnceRestarted()
    {
        string file = _dir.Create(4 * MiB, "disk.raw");
        int port = NbdPeer.FreePort();
        string[] args = ["-f", "--exit-with-parent", "-i", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "file", file];
        var data = new byte[64 * 1024];
        new Random(14).NextBytes(data);
        var peer = NbdPeer.Start("nbdkit", $"nbd://127.0.0.1:{port}/", args);
        using var disk = NbdBlockDevice.Open(NbdUri.Parse(peer.Uri), readOnly: false);
        try
        {
            disk.Write(MiB, data);
            disk.Flush();
            peer.Kill();
            await Assert.ThrowsAsync<IOException>(() => Task.Run(() => disk.Read(MiB, new byte[4096])).WaitAsync(NoHang, TestContext.Current.CancellationToken));
            await Assert.ThrowsAsync<IOException>(() => Task.Run(() => disk.Write(0, new byte[4096])).WaitAsync(NoHang, TestContext.Current.CancellationToken));
        }
        finally
        {
            peer.Dispose();
        }

        using var restarted = NbdPeer.Start("nbdkit", $"nbd://127.0.0.1:{port}/", args);
        var back = new byte[data.Length];
        disk.Read(MiB, back);
        Assert.Equal(data, back);
    }

    private NbdPeer Nbdkit(params string[] args)
    {
        string socket = Path.Combine(_dir.Directory, "nbdkit.sock");
        return NbdPeer.Start("nbdkit", $"nbd+unix:///?socket={socket}", ["-f", "--exit-with-parent", "-U", socket, .. args]);
    }
}
