using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using HostVM.Storage.Tests.Nbd;

namespace HostVM.Integration.Tests;

/// <summary>
/// A guest whose disk lives on an NBD server: <c>hostvm run --drive file=nbd://…</c> against qemu-storage-daemon serving a
/// qcow2 image of the test disk. The guest mounts ext4, checks what is there, writes a file, syncs and powers off; the
/// host then finds that file in the image QEMU's tools read back.
/// </summary>
[Collection(GuestCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class NbdGuestTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-nbd-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task AGuestWritesExt4OnADiskServedByQemuStorageDaemon()
    {
        string image = Path.Combine(_dir, "vm.qcow2");
        Assert.Equal(0, QemuImg("convert", "-f", "raw", "-O", "qcow2", GuestArtifacts.Guest("disk.ext4"), image).ExitCode);
        int port = NbdPeer.FreePort();
        string written;
        using (var server = NbdPeer.Start(
            "qemu-storage-daemon",
            $"nbd://127.0.0.1:{port}/vm",
            "--blockdev", $"driver=file,node-name=file0,filename={image}",
            "--blockdev", "driver=qcow2,node-name=disk0,file=file0",
            "--nbd-server", $"addr.type=inet,addr.host=127.0.0.1,addr.port={port}",
            "--export", "type=nbd,id=exp0,node-name=disk0,name=vm,writable=on"))
        {
            using var vm = HostvmProcess.StartWithInput(
                null,
                "run", "--firmware", GuestArtifacts.Guest("fw_jump.bin"), "--kernel", GuestArtifacts.Guest("Image"),
                "--initrd", GuestArtifacts.Guest("initramfs.cpio.gz"), "--append", "console=ttyS0 quiet hostvm.mode=shell",
                "--drive", $"file={server.Uri},id=nbd-disk", "--timeout", "300");
            await vm.WaitForOutputAsync("HOSTVM-SHELL-READY", TimeSpan.FromSeconds(180));

            // Markers are split in the typed line so that its echo never matches.
            vm.WriteInput(Encoding.ASCII.GetBytes(
                "mount -t ext4 /dev/vda /mnt && cd /mnt/hostvm && sha256sum -c known.sha256 blob.sha256 && cd / && " +
                "dd if=/dev/urandom of=/mnt/hostvm/nbd.bin bs=4k count=256 2>/dev/null && sha256sum /mnt/hostvm/nbd.bin && " +
                "sync && umount /mnt && cat /sys/block/vda/serial && echo \"NBD-\"\"DONE\"\n"));
            await vm.WaitForOutputAsync("NBD-DONE", TimeSpan.FromSeconds(120));
            Assert.Contains("blob.bin: OK", vm.Output, StringComparison.Ordinal);
            Assert.Contains("nbd-disk", vm.Output, StringComparison.Ordinal);
            written = Sha256Of(vm.Output);
            vm.WriteInput("exit\n"u8);
            Assert.Equal(0, await vm.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        // The daemon has stopped (SIGTERM: it flushed); QEMU's tools read what the guest wrote.
        var (code, output) = QemuImg("check", image);
        Assert.True(code == 0, output);
        string flat = Path.Combine(_dir, "flat.ext4");
        Assert.Equal(0, QemuImg("convert", "-O", "raw", image, flat).ExitCode);
        Assert.Equal(written, Convert.ToHexStringLower(SHA256.HashData(Ext4Files.Dump(flat, "/hostvm/nbd.bin", _dir))));
    }

    private static string Sha256Of(string output) =>
        HashLine().Match(output) is { Success: true } m ? m.Groups[1].Value : throw new InvalidOperationException("no sha256 of nbd.bin in: " + output);

    [GeneratedRegex("\\b([0-9a-f]{64})\\s+/mnt/hostvm/nbd\\.bin")]
    private static partial Regex HashLine();

    private (int ExitCode, string Output) QemuImg(params string[] args) => HostVM.Storage.Tests.QemuTools.Run("qemu-img", _dir, args);
}
