using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using HostVM.Storage.Nbd;
using HostVM.Storage.Qcow2;

namespace HostVM.Storage.Tests.Nbd;

/// <summary>
/// HostVM's NBD server as other tools see it: qemu-img and nbdinfo read raw and qcow2 images it serves exactly as the
/// files are, qemu-io writes through it, HostVM's own client round-trips with it, and a hostile client gets errors (or
/// is hung up on) while the server goes on serving the next one.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class NbdServerTests : IDisposable
{
    private const int MiB = 1 << 20;
    private static readonly TimeSpan NoHang = TimeSpan.FromSeconds(30);
    private readonly TempImage _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task QemuImgAndNbdinfoReadARawAndAQcow2ImageAsTheFilesAre()
    {
        var bytes = new byte[8 * MiB];
        new Random(21).NextBytes(bytes.AsSpan(0, 3 * MiB));
        string raw = Path.Combine(_dir.Directory, "source.raw");
        File.WriteAllBytes(raw, bytes);
        string qcow2 = Path.Combine(_dir.Directory, "source.qcow2");
        QemuTools.Check("qemu-img", _dir.Directory, "convert", "-f", "raw", "-O", "qcow2", raw, qcow2);
        using var rawDisk = DiskImage.Open(raw, readOnly: true);
        using var qcowDisk = DiskImage.Open(qcow2, readOnly: true);
        await using var server = NbdServer.Start(new IPEndPoint(IPAddress.Loopback, 0), [new NbdExport("raw", rawDisk), new NbdExport("qcow2", qcowDisk, Description: "a qcow2 image")]);

        Assert.Contains("\"virtual-size\": 8388608", QemuTools.Check("qemu-img", _dir.Directory, "info", "--output=json", server.UriFor("raw")), StringComparison.Ordinal);
        foreach (string export in new[] { "raw", "qcow2" })
        {
            Assert.Contains("Images are identical", QemuTools.Check("qemu-img", _dir.Directory, "compare", "-f", "raw", "-F", "raw", raw, server.UriFor(export)), StringComparison.Ordinal);
            string copy = Path.Combine(_dir.Directory, $"copy-{export}.raw");
            QemuTools.Check("qemu-img", _dir.Directory, "convert", "-f", "raw", "-O", "raw", server.UriFor(export), copy);
            Assert.True(bytes.AsSpan().SequenceEqual(File.ReadAllBytes(copy)), $"{export}: the copy differs");
        }

        string info = QemuTools.Check("nbdinfo", _dir.Directory, server.UriFor("qcow2"));
        Assert.Contains("export-size: 8388608", info, StringComparison.Ordinal);
        Assert.Contains("is_read_only: true", info, StringComparison.Ordinal);
        Assert.Contains("description: a qcow2 image", info, StringComparison.Ordinal);
        string list = QemuTools.Check("nbdinfo", _dir.Directory, "--list", server.UriFor(string.Empty));
        Assert.Contains("export=\"raw\"", list, StringComparison.Ordinal);
        Assert.Contains("export=\"qcow2\"", list, StringComparison.Ordinal);

        // The qcow2 image's second part was never written: a hole that reads as zeroes.
        string map = QemuTools.Check("nbdinfo", _dir.Directory, "--map", server.UriFor("qcow2"));
        Assert.Contains("data", map, StringComparison.Ordinal);
        Assert.Contains("hole,zero", map, StringComparison.Ordinal);
    }

    [Fact]
    public async Task QemuIoWritesThroughTheServerIntoAQcow2Image()
    {
        string qcow2 = Path.Combine(_dir.Directory, "disk.qcow2");
        Qcow2Image.Create(qcow2, 8 * MiB);
        using (var disk = DiskImage.Open(qcow2, readOnly: false))
        {
            await using var server = NbdServer.Start(new UnixDomainSocketEndPoint(Path.Combine(_dir.Directory, "srv.sock")), [new NbdExport("disk", disk)]);
            string uri = server.UriFor("disk");
            QemuTools.Io(_dir.Directory, uri, "write -P 0x5a 1M 192k", "write -z 2M 64k", "discard 3M 64k", "write -P 0x33 4095k 2k", "flush");
            QemuTools.Io(_dir.Directory, uri, "read -P 0x5a 1M 192k", "read -P 0 2M 64k", "read -P 0x33 4095k 2k");
        }

        QemuTools.Check("qemu-img", _dir.Directory, "check", qcow2);
        string flat = Path.Combine(_dir.Directory, "flat.raw");
        QemuTools.Check("qemu-img", _dir.Directory, "convert", "-O", "raw", qcow2, flat);
        byte[] back = File.ReadAllBytes(flat);
        Assert.All(back.AsSpan(MiB, 192 * 1024).ToArray(), b => Assert.Equal(0x5a, b));
        Assert.All(back.AsSpan((4095 * 1024) - 0, 2048).ToArray(), b => Assert.Equal(0x33, b));
    }

    [Fact]
    public async Task HostVmsClientRoundTripsWithHostVmsServer()
    {
        string raw = _dir.Create(16 * MiB, "disk.raw");
        using var backing = DiskImage.Open(raw, readOnly: false);
        using var readOnlyBacking = DiskImage.Open(_dir.Create(MiB, "ro.raw"), readOnly: true);
        await using var server = NbdServer.Start(new UnixDomainSocketEndPoint(Path.Combine(_dir.Directory, "srv.sock")), [new NbdExport("disk", backing), new NbdExport("ro", readOnlyBacking)]);
        using (var disk = (NbdBlockDevice)DiskImage.Open(server.UriFor("disk"), readOnly: false))
        {
            var model = new DiskModel(new byte[16 * MiB]);
            model.RandomIo(disk, seed: 22, operations: 400, maxSectors: 8192);
            disk.Flush();
            var all = new byte[16 * MiB];
            disk.Read(0, all);
            model.Check(0, all);
            Assert.True(disk.ReportsAllocation);
            Assert.NotEmpty(NbdTestExtents.All(disk, 0, disk.Length));
        }

        using var client = NbdClient.Connect(NbdUri.Parse(server.UriFor("ro")));
        Assert.True(client.ReadOnly);
        var e = Assert.Throws<NbdServerErrorException>(() => client.Write(0, new byte[512]));
        Assert.Equal(1u, e.Error); // EPERM
        Assert.False(client.IsBroken);
        client.Read(0, new byte[4096]);
    }

    [Fact]
    public async Task AHostileClientGetsErrorsOrIsHungUpOnAndTheServerServesTheNext()
    {
        using var backing = DiskImage.Open(_dir.Create(MiB, "disk.raw"), readOnly: false);
        await using var server = NbdServer.Start(new IPEndPoint(IPAddress.Loopback, 0), [new NbdExport("disk", backing)], new NbdServerOptions { MaxConnections = 2, HandshakeTimeout = TimeSpan.FromSeconds(1) });
        var endpoint = (IPEndPoint)server.LocalEndPoint;
        await Task.Run(async () =>
        {
            using (var s = Transmitting(endpoint))
            {
                Assert.Equal(22u, Request(s, type: 0, offset: 0, length: 64 * MiB)); // a read too large
                Assert.Equal(22u, Request(s, type: 0, offset: MiB - 512, length: 1024)); // past the end
                Assert.Equal(22u, Request(s, type: 0, offset: ulong.MaxValue - 10, length: 512)); // offset + length overflows
                Assert.Equal(28u, Request(s, type: 1, offset: MiB, length: 512, payload: new byte[512])); // a write past the end, its payload skipped
                Assert.Equal(22u, Request(s, type: 99, offset: 0, length: 0)); // no such command
                Assert.Equal(22u, Request(s, type: 7, offset: 0, length: 512)); // block status without a context
                Assert.Equal(0u, Request(s, type: 1, offset: 512, length: 512, payload: new byte[512])); // still in step
                s.Send(new byte[28]); // a request with no magic: hung up on
                Assert.Equal(0, s.Receive(new byte[16]));
            }

            using (var s = Transmitting(endpoint))
            {
                // A write longer than any request may be: the server will not read 4 GiB to skip it.
                Request(s, type: 1, offset: 0, length: uint.MaxValue, payload: [], expectReply: false);
                Assert.Equal(0, s.Receive(new byte[16]));
            }

            // Two connections at most: a third is closed at once; a silent one is closed after the handshake timeout.
            using var first = Connected(endpoint);
            using var second = Connected(endpoint);
            using var third = Connected(endpoint);
            Assert.Equal(0, ReceiveAll(third, 18));
            Assert.Equal(18, ReceiveAll(first, 18));
            Assert.Equal(0, first.Receive(new byte[1]));
        }).WaitAsync(NoHang, TestContext.Current.CancellationToken);

        using var client = NbdClient.Connect(NbdUri.Parse(server.UriFor("disk")));
        client.Read(0, new byte[512]);
    }

    [Fact]
    public async Task DisposingTheServerClosesItsConnectionsAndReturns()
    {
        using var backing = DiskImage.Open(_dir.Create(MiB, "disk.raw"), readOnly: false);
        var server = NbdServer.Start(new UnixDomainSocketEndPoint(Path.Combine(_dir.Directory, "srv.sock")), [new NbdExport("disk", backing)]);
        using var client = NbdClient.Connect(NbdUri.Parse(server.UriFor("disk")));
        client.Read(0, new byte[512]);
        Assert.Equal(1, server.Connections);
        await server.DisposeAsync().AsTask().WaitAsync(NoHang, TestContext.Current.CancellationToken);
        Assert.False(File.Exists(Path.Combine(_dir.Directory, "srv.sock")));
        Assert.ThrowsAny<IOException>(() => client.Read(0, new byte[512]));
    }

    private static Socket Connected(IPEndPoint endpoint)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000 };
        s.Connect(endpoint);
        return s;
    }

    /// <summary>Reads until <paramref name="bytes"/> have come or the peer hung up; how many came.</summary>
    private static int ReceiveAll(Socket s, int bytes) => ReceiveInto(s, new byte[bytes]);

    private static int ReceiveInto(Socket s, byte[] buffer)
    {
        int got = 0;
        while (got < buffer.Length)
        {
            int n = s.Receive(buffer, got, buffer.Length - got, SocketFlags.None);
            if (n == 0)
            {
                break;
            }

            got += n;
        }

        return got;
    }

    private static byte[] Receive(Socket s, int bytes)
    {
        var buffer = new byte[bytes];
        Assert.Equal(bytes, ReceiveInto(s, buffer));
        return buffer;
    }

    /// <summary>A raw connection taken to the transmission phase with simple replies only (NBD_OPT_GO "disk").</summary>
    private static Socket Transmitting(IPEndPoint endpoint)
    {
        var s = Connected(endpoint);
        Assert.Equal(18, ReceiveAll(s, 18));
        s.Send([0, 0, 0, 3]);
        byte[] name = Encoding.UTF8.GetBytes("disk");
        var option = new byte[16 + 4 + name.Length + 2];
        BinaryPrimitives.WriteUInt64BigEndian(option, 0x49484156454F5054);
        BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(8), 7);
        BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(12), (uint)(4 + name.Length + 2));
        BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(16), (uint)name.Length);
        name.CopyTo(option, 20);
        s.Send(option);
        while (true)
        {
            byte[] header = Receive(s, 20);
            byte[] data = Receive(s, (int)BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(16)));
            uint type = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
            Assert.True(type is 1 or 3, $"NBD_OPT_GO failed: {type:x} {Encoding.UTF8.GetString(data)}");
            if (type == 1)
            {
                break;
            }
        }

        return s;
    }

    private static uint Request(Socket s, ushort type, ulong offset, uint length, byte[]? payload = null, bool expectReply = true)
    {
        var header = new byte[28];
        BinaryPrimitives.WriteUInt32BigEndian(header, 0x25609513);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(6), type);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(8), 42);
        BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(16), offset);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(24), length);
        s.Send([.. header, .. payload ?? []]);
        if (!expectReply)
        {
            return 0;
        }

        byte[] reply = Receive(s, 16);
        Assert.Equal(0x67446698u, BinaryPrimitives.ReadUInt32BigEndian(reply));
        Assert.Equal(42ul, BinaryPrimitives.ReadUInt64BigEndian(reply.AsSpan(8)));
        return BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(4));
    }
}
