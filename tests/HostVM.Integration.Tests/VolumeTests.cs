using System.Security.Cryptography;
using System.Text.Json;
using HostVM.Storage.Tests;
using HostVM.Storage.Tests.Nbd;

namespace HostVM.Integration.Tests;

/// <summary>
/// Volumes through the `hostvm` client against a real daemon and a real guest: a disk image imported (qcow2 in, raw
/// stored) and a new qcow2 volume attached to one VM as vdb and vdc, read and written by its guest (through the VMM's
/// jail where the daemon jails), held while it runs, exported (raw stored, qcow2 out) and checked by qemu-img.
/// </summary>
[Collection(GuestCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class VolumeTests
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(2);

    private static Dictionary<string, string> Environment(DaemonUnderTest daemon) => new()
    {
        ["HOSTVM_HOST"] = daemon.Client.BaseAddress!.ToString(),
        ["HOSTVM_FINGERPRINT"] = daemon.Fingerprint,
        ["HOSTVM_TOKEN"] = daemon.Token!,
        ["XDG_CONFIG_HOME"] = Path.Combine(daemon.Root, "config"),
    };

    private static (int Code, string Stdout, string Stderr) Hostvm(DaemonUnderTest daemon, params string[] args)
    {
        using var p = HostvmProcess.Start(Environment(daemon), args);
        int code = p.WaitForExitAsync(CommandTimeout).GetAwaiter().GetResult();
        return (code, p.Output, p.Errors);
    }

    private static string Ok(DaemonUnderTest daemon, params string[] args)
    {
        var (code, stdout, stderr) = Hostvm(daemon, args);
        Assert.True(code == 0, $"hostvm {string.Join(' ', args)} exited {code}\nstdout:\n{stdout}\nstderr:\n{stderr}\ndaemon:\n{daemon.Process.Errors}");
        return stdout;
    }

    private static void Refused(DaemonUnderTest daemon, string mentions, params string[] args)
    {
        var (code, _, stderr) = Hostvm(daemon, args);
        Assert.True(code == 4, $"hostvm {string.Join(' ', args)}: exit {code}, expected 4 (a conflict)\nstderr:\n{stderr}");
        Assert.Contains(mentions, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AGuestReadsAndWritesAttachedVolumesThatAreImportedAndExportedWithConversion()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        string work = Path.Combine(daemon.Root, "files");
        Directory.CreateDirectory(work);

        // 3 MiB of data with holes, as a qcow2 file on the client's side; stored raw by the daemon.
        var seed = new byte[3 << 20];
        Random.Shared.NextBytes(seed.AsSpan(0, 1 << 20));
        Random.Shared.NextBytes(seed.AsSpan(2 << 20, 1 << 20));
        await File.WriteAllBytesAsync(Path.Combine(work, "seed.raw"), seed, TestContext.Current.CancellationToken);
        QemuTools.Check("qemu-img", work, "convert", "-f", "raw", "-O", "qcow2", "seed.raw", "seed.qcow2");
        Ok(daemon, "volume", "import", "default/seed", Path.Combine(work, "seed.qcow2"), "--format", "raw");
        Ok(daemon, "volume", "create", "data", "--size", "64M");

        Ok(daemon, "vm", "create", "vol", "--image", "guest", "--disk", "data", "--disk", "default/seed", "--start");
        var vm = await daemon.GetAsync("/v1/vms/vol");
        Assert.Equal(["default/data", "default/seed"], vm.GetProperty("volumes").EnumerateArray().Select(v => v.GetString()));
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
        using (var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm)))
        {
            var (status, output) = await console.RunAsync("cat /sys/block/vdb/size /sys/block/vdc/size && dd if=/dev/vdc bs=1M count=3 2>/dev/null | sha256sum");
            Assert.True(status == 0, output);
            Assert.Contains($"{64 << 11}", output, StringComparison.Ordinal);
            Assert.Contains($"{3 << 11}", output, StringComparison.Ordinal);
            Assert.Contains(Convert.ToHexStringLower(SHA256.HashData(seed)), output, StringComparison.Ordinal);

            (status, output) = await console.RunAsync("echo written-by-the-guest | dd of=/dev/vdb bs=512 seek=20480 2>/dev/null && sync");
            Assert.True(status == 0, output);
        }

        // While the VM runs, its volumes are its own.
        Refused(daemon, "attached to VM 'vol'", "volume", "delete", "data");
        Refused(daemon, "stop it first", "volume", "export", "data", Path.Combine(work, "early.raw"));
        Refused(daemon, "attached to VM 'vol'", "vm", "create", "other", "--image", "guest", "--disk", "data");
        Assert.False(File.Exists(Path.Combine(work, "early.raw")));

        using var list = JsonDocument.Parse(Ok(daemon, "volume", "list", "-o", "json"));
        var data = list.RootElement.EnumerateArray().Single(v => v.GetProperty("name").GetString() == "data");
        Assert.Equal("vol", data.GetProperty("attached_to").GetString());

        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/vol/stop", new { timeout_s = 20 })).Status);

        // Out as qcow2 (from a qcow2 volume) and as raw (from a raw one): qemu-img reads what the guest wrote and what was imported.
        string exported = Path.Combine(work, "data.qcow2");
        Ok(daemon, "volume", "export", "data", exported, "--format", "qcow2");
        Assert.Contains("No errors were found", QemuTools.Check("qemu-img", work, "check", exported), StringComparison.Ordinal);
        QemuTools.Check("qemu-img", work, "convert", "-O", "raw", exported, "data.raw");
        using (var raw = File.OpenRead(Path.Combine(work, "data.raw")))
        {
            var sector = new byte[21];
            raw.Position = 20480L * 512;
            raw.ReadExactly(sector);
            Assert.Equal("written-by-the-guest\n", System.Text.Encoding.ASCII.GetString(sector));
        }

        Ok(daemon, "volume", "export", "default/seed", Path.Combine(work, "seed-out.raw"));
        Assert.Equal(seed, await File.ReadAllBytesAsync(Path.Combine(work, "seed-out.raw"), TestContext.Current.CancellationToken));

        // Gone with its VM, the volume can go too; the pool's directory is empty again.
        Ok(daemon, "vm", "delete", "vol", "--purge");
        Ok(daemon, "volume", "delete", "data");
        Ok(daemon, "volume", "delete", "default/seed");
        Assert.Empty(Directory.GetFiles(Path.Combine(daemon.DataDir, "pools", "default")));
    }

    [Fact]
    public async Task AVolumeServedOverNbdIsReadByQemuImgAndNbdinfoAndWrittenWhenWritable()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        string work = Path.Combine(daemon.Root, "files");
        Directory.CreateDirectory(work);
        var seed = new byte[2 << 20];
        Random.Shared.NextBytes(seed.AsSpan(0, 1 << 20)); // the second MiB stays a hole
        await File.WriteAllBytesAsync(Path.Combine(work, "seed.raw"), seed, TestContext.Current.CancellationToken);
        Ok(daemon, "volume", "import", "seed", Path.Combine(work, "seed.raw"));

        using (var served = JsonDocument.Parse(Ok(daemon, "volume", "serve", "seed", "--listen", "127.0.0.1:0", "-o", "json")))
        {
            string uri = served.RootElement.GetProperty("uri").GetString()!;
            Assert.False(served.RootElement.GetProperty("writable").GetBoolean());
            Assert.Contains("Images are identical", QemuTools.Check("qemu-img", work, "compare", "-f", "raw", "-F", "raw", "seed.raw", uri), StringComparison.Ordinal);
            string map = QemuTools.Check("nbdinfo", work, "--map", uri);
            Assert.Matches(@"0\s+1048576\s+0\s+data", map);
            Assert.Matches(@"1048576\s+1048576\s+3\s+hole,zero", map);
            var (code, output) = QemuTools.Run("qemu-io", work, "-f", "raw", "-c", "write 0 4k", uri);
            Assert.True(code != 0 || output.Contains("failed", StringComparison.OrdinalIgnoreCase), $"a read-only export took a write: {output}");
        }

        // While it is served, it stays as it is: not deleted, not resized, no VM starts on it.
        Refused(daemon, "served over NBD", "volume", "delete", "seed");
        Refused(daemon, "served over NBD", "volume", "resize", "seed", "4M");
        Ok(daemon, "vm", "create", "user", "--image", "guest", "--disk", "seed");
        Refused(daemon, "served over NBD", "vm", "start", "user");
        Ok(daemon, "vm", "delete", "user", "--purge");

        // Served writable, a client's writes land in the volume.
        Ok(daemon, "volume", "serve", "seed", "--stop");
        using (var served = JsonDocument.Parse(Ok(daemon, "volume", "serve", "seed", "--listen", "127.0.0.1:0", "--writable", "-o", "json")))
        {
            string uri = served.RootElement.GetProperty("uri").GetString()!;
            QemuTools.Check("qemu-io", work, "-f", "raw", "-c", "write -P 0x5a 1M 64k", uri);
        }

        Ok(daemon, "volume", "serve", "seed", "--stop");
        Ok(daemon, "volume", "export", "seed", Path.Combine(work, "out.raw"));
        byte[] written = await File.ReadAllBytesAsync(Path.Combine(work, "out.raw"), TestContext.Current.CancellationToken);
        Assert.Equal(seed.AsSpan(0, 1 << 20).ToArray(), written.AsSpan(0, 1 << 20).ToArray());
        Assert.All(written.AsSpan(1 << 20, 64 << 10).ToArray(), b => Assert.Equal(0x5a, b));
        Ok(daemon, "volume", "delete", "seed");
    }

    [Fact]
    public async Task AVmsVolumeOnARemoteNbdServerIsReachedThroughTheDaemonFromItsJail()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        string work = Path.Combine(daemon.Root, "files");
        Directory.CreateDirectory(work);
        string remote = Path.Combine(work, "remote.raw");
        var content = new byte[4 << 20];
        Random.Shared.NextBytes(content.AsSpan(0, 1 << 20));
        await File.WriteAllBytesAsync(remote, content, TestContext.Current.CancellationToken);
        int port = NbdPeer.FreePort();
        using (var server = NbdPeer.Start(
            "qemu-storage-daemon",
            $"nbd://127.0.0.1:{port}/remote",
            "--blockdev", $"driver=file,node-name=file0,filename={remote}",
            "--nbd-server", $"addr.type=inet,addr.host=127.0.0.1,addr.port={port}",
            "--export", "type=nbd,id=exp0,node-name=file0,name=remote,writable=on"))
        {
            Ok(daemon, "pool", "create", "far", "--driver", "nbd", "--address", $"127.0.0.1:{port}");
            var (code, _, stderr) = Hostvm(daemon, "volume", "create", "far/missing");
            Assert.True(code == 1, stderr); // an export the server does not have is refused
            using (var created = JsonDocument.Parse(Ok(daemon, "volume", "create", "far/remote", "-o", "json")))
            {
                Assert.Equal(4L << 20, created.RootElement.GetProperty("size_bytes").GetInt64());
                Assert.Equal("raw", created.RootElement.GetProperty("format").GetString());
            }

            Ok(daemon, "vm", "create", "far", "--image", "guest", "--disk", "far/remote", "--start");
            var vm = await daemon.GetAsync("/v1/vms/far");
            await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
            using (var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm)))
            {
                var (status, output) = await console.RunAsync(
                    "dd if=/dev/vdb bs=1M count=1 2>/dev/null | sha256sum && echo from-the-jail | dd of=/dev/vdb bs=512 seek=4096 2>/dev/null && sync");
                Assert.True(status == 0, output);
                Assert.Contains(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content.AsSpan(0, 1 << 20))), output, StringComparison.Ordinal);
            }

            Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/far/stop", new { timeout_s = 20 })).Status);
            Ok(daemon, "vm", "delete", "far", "--purge");
            Ok(daemon, "volume", "delete", "far/remote");
            Ok(daemon, "pool", "delete", "far");
        }

        // The guest's write went through the daemon to the remote server's file; the export is still there.
        using var file = File.OpenRead(remote);
        var sector = new byte[14];
        file.Position = 4096L * 512;
        file.ReadExactly(sector);
        Assert.Equal("from-the-jail\n", System.Text.Encoding.ASCII.GetString(sector));
    }
}
