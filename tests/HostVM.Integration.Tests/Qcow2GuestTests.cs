using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using HostVM.Machine;
using HostVM.Machine.Virtio;
using HostVM.Storage;
using HostVM.Storage.Qcow2;

namespace HostVM.Integration.Tests;

/// <summary>
/// A real Linux guest on qcow2 disks: ext4 on an overlay whose base stays unchanged and which QEMU's tools read back,
/// a compressed image QEMU made, and a guest writing and syncing while its VMM is killed with SIGKILL again and again:
/// each time qemu-img check finds no corruption and every synced write is there.
/// </summary>
[Collection(GuestCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class Qcow2GuestTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-qcow2-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void AGuestWritesExt4OnAnOverlayWhoseBaseStaysUnchanged()
    {
        string baseImage = Path.Combine(_dir, "base.ext4");
        File.Copy(GuestArtifacts.Guest("disk.ext4"), baseImage);
        File.SetUnixFileMode(baseImage, UnixFileMode.UserRead); // a template: nobody writes it
        string baseHash = Sha256(File.ReadAllBytes(baseImage));
        string overlay = Path.Combine(_dir, "vm.qcow2");
        Qcow2Image.Create(overlay, 0, "base.ext4", "raw");

        string written;
        var config = GuestSession.Configuration() with { VirtioDevices = [new VirtioBlock(DiskImage.Open(overlay, readOnly: false, "qcow2"))] };
        using (var guest = GuestSession.Start(config))
        {
            guest.Check("mount -t ext4 /dev/vda /mnt");
            Assert.Contains("blob.bin: OK", guest.Check("cd /mnt/hostvm && sha256sum -c known.sha256 blob.sha256; cd /"));
            written = HashIn(guest.Check("dd if=/dev/urandom of=/mnt/hostvm/out.bin bs=4k count=256 2>/dev/null && sha256sum /mnt/hostvm/out.bin"));
            guest.Check("rm /mnt/hostvm/blob.bin && fstrim /mnt || true");
            guest.Check("umount /mnt");
            Assert.Equal(MachineExitReason.PowerOff, guest.PowerOff().Reason);
        }

        Assert.Equal(baseHash, Sha256(File.ReadAllBytes(baseImage)));
        Assert.Equal(0, QemuImg("check", overlay).ExitCode);
        string flat = Path.Combine(_dir, "flat.ext4");
        Assert.Equal(0, QemuImg("convert", "-O", "raw", overlay, flat).ExitCode);
        Assert.Equal(written, Sha256(Ext4Files.Dump(flat, "/hostvm/out.bin", _dir)));
        Assert.True(new FileInfo(overlay).Length < new FileInfo(baseImage).Length / 2, "the overlay holds only what the guest wrote");
    }

    [Fact]
    public void AGuestReadsACompressedImageQemuMade()
    {
        string compressed = Path.Combine(_dir, "compressed.qcow2");
        Assert.Equal(0, QemuImg("convert", "-c", "-f", "raw", "-O", "qcow2", GuestArtifacts.Guest("disk.ext4"), compressed).ExitCode);
        var config = GuestSession.Configuration() with { VirtioDevices = [new VirtioBlock(DiskImage.Open(compressed, readOnly: false))] };
        using var guest = GuestSession.Start(config);
        guest.Check("mount -t ext4 /dev/vda /mnt");
        string sums = guest.Check("cd /mnt/hostvm && sha256sum -c known.sha256 blob.sha256; cd /");
        Assert.Contains("known.txt: OK", sums);
        Assert.Contains("blob.bin: OK", sums);
        guest.Check("dd if=/dev/urandom of=/mnt/hostvm/new.bin bs=64k count=16 2>/dev/null && sync && umount /mnt");
        guest.PowerOff();
    }

    [Fact]
    public async Task SyncedWritesSurviveFiftyKillsOfTheVmAtRandomMoments()
    {
        const int Sectors = 65536; // a 32 MiB disk; record i goes to sector (i * 997) % Sectors
        string image = Path.Combine(_dir, "crash.qcow2");
        Qcow2Image.Create(image, Sectors * 512L);
        var random = new Random(2026);

        // Per sector: the last record known synced there, and the records written after it that may or may not have landed.
        var synced = new Dictionary<int, long>();
        var unsynced = new Dictionary<int, List<long>>();
        long start = 1;
        for (int round = 0; round < 50; round++)
        {
            long lastSynced;
            using (var vm = HostvmProcess.StartWithInput(
                null,
                "run", "--firmware", GuestArtifacts.Guest("fw_jump.bin"), "--kernel", GuestArtifacts.Guest("Image"),
                "--initrd", GuestArtifacts.Guest("initramfs.cpio.gz"), "--append", "console=ttyS0 quiet hostvm.mode=shell",
                "--drive", $"file={image},format=qcow2", "--timeout", "300"))
            {
                await vm.WaitForOutputAsync("HOSTVM-SHELL-READY", TimeSpan.FromSeconds(180));

                // Eight records, the last one's dd ending in fsync of /dev/vda (which, unlike sync(1), makes the kernel send
                // the disk a flush), then SYNCED-n: every record below n is durable. The marker is split in the typed
                // line so that its echo never matches.
                vm.WriteInput(Encoding.ASCII.GetBytes(
                    $"i={start}; while :; do j=0; while [ $j -lt 8 ]; do printf 'REC%010d' $i > /tmp/r; c=sync,notrunc; [ $j = 7 ] && c=$c,fsync; " +
                    $"dd if=/tmp/r of=/dev/vda bs=512 count=1 seek=$(( (i * 997) % {Sectors} )) conv=$c 2>/dev/null || break; " +
                    "i=$((i+1)); j=$((j+1)); done; echo \"SYNC\"\"ED-$i\"; done\n"));
                await vm.WaitForOutputAsync("SYNCED-", TimeSpan.FromSeconds(120));
                await Task.Delay(random.Next(0, 1500), TestContext.Current.CancellationToken);
                vm.Kill(); // wherever the VMM is
                lastSynced = SyncedMarker().Matches(vm.Output).Select(m => long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).Max();
            }

            for (long i = start; i < start + 200_000; i++)
            {
                int sector = (int)(i * 997 % Sectors);
                if (i < lastSynced)
                {
                    synced[sector] = i;
                    unsynced.Remove(sector);
                }
                else if (i < lastSynced + 50_000)
                {
                    (unsynced.TryGetValue(sector, out var list) ? list : unsynced[sector] = []).Add(i);
                }
            }

            var (code, output) = QemuImg("check", image);
            Assert.True(code is 0 or 3, $"round {round}: qemu-img check says {code} (0 clean, 3 leaks only): {output}");
            string flat = Path.Combine(_dir, "flat.raw");
            Assert.Equal(0, QemuImg("convert", "-O", "raw", image, flat).ExitCode);
            byte[] disk = File.ReadAllBytes(flat);
            File.Delete(flat);
            for (int sector = 0; sector < Sectors; sector++)
            {
                string record = Encoding.ASCII.GetString(disk, sector * 512, 13);
                bool isSynced = synced.TryGetValue(sector, out long expected);
                if (isSynced && record == $"REC{expected:D10}")
                {
                    continue;
                }

                bool landedLater = record.StartsWith("REC", StringComparison.Ordinal) && unsynced.TryGetValue(sector, out var maybe)
                    && maybe.Contains(long.Parse(record[3..], System.Globalization.CultureInfo.InvariantCulture));
                bool stillEmpty = !isSynced && disk.AsSpan(sector * 512, 512).IndexOfAnyExcept((byte)0) < 0;
                Assert.True(landedLater || stillEmpty, $"round {round}: sector {sector} holds {Convert.ToHexString(disk, sector * 512, 16)}, expected {(isSynced ? $"REC{expected:D10}" : "zeroes")} or a record written after the last sync");
            }

            start = lastSynced + 200_000;
        }

        // HostVM repairs what the kills leaked when it next opens the image for writing.
        using (var disk = DiskImage.Open(image, readOnly: false, "qcow2"))
        {
            disk.Flush();
        }

        var (finalCode, finalOutput) = QemuImg("check", image);
        Assert.True(finalCode == 0, finalOutput);
    }

    [Fact]
    public async Task TheCompiledVmmOpensAQcow2DriveByItsHeaderAndRefusesAnUnknownFormat()
    {
        string image = Path.Combine(_dir, "vmm.qcow2");
        Qcow2Image.Create(image, 64L << 20);
        string Config(string format) => $$"""
            {
              "boot-source": {"kernel_image_path": "{{GuestArtifacts.Guest("Image")}}", "initrd_path": "{{GuestArtifacts.Guest("initramfs.cpio.gz")}}", "boot_args": "console=ttyS0 quiet hostvm.mode=iobench hostvm.diskmb=16"},
              "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
              "drives": [{"drive_id": "disk", "path_on_host": "{{image}}", "is_root_device": false, "is_read_only": false{{format}}}]
            }
            """;
        string config = Path.Combine(_dir, "vm.json");
        File.WriteAllText(config, Config(""));
        using (var vmm = HostvmProcess.StartVmm("--no-api", "--config-file", config))
        {
            Assert.Equal(0, await vmm.WaitForExitAsync(TimeSpan.FromSeconds(180)));
            Assert.Contains("HOSTVM-DISK-WRITE 16777216", vmm.Output, StringComparison.Ordinal);
            Assert.Contains("HOSTVM-DISK-READ 16777216", vmm.Output, StringComparison.Ordinal);
        }

        var (code, output) = QemuImg("check", image);
        Assert.True(code == 0, output);
        Assert.Contains("256/1024 = 25.00% allocated", output, StringComparison.Ordinal); // the guest's 16 MiB, in 64 KiB clusters

        File.WriteAllText(config, Config(", \"format\": \"vmdk\""));
        using (var vmm = HostvmProcess.StartVmm("--no-api", "--config-file", config))
        {
            Assert.Equal(2, await vmm.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("format vmdk: must be raw or qcow2", vmm.Errors, StringComparison.Ordinal);
        }
    }

    [GeneratedRegex("SYNCED-([0-9]+)")]
    private static partial Regex SyncedMarker();

    private static string Sha256(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    private static string HashIn(string output) =>
        Regex.Match(output, "\\b[0-9a-f]{64}\\b") is { Success: true } m ? m.Value : throw new InvalidOperationException("no sha256 in: " + output);

    private (int ExitCode, string Output) QemuImg(params string[] args) => HostVM.Storage.Tests.QemuTools.Run("qemu-img", _dir, args);
}
