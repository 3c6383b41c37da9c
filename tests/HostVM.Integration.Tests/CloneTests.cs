using System.Diagnostics;
using System.Security.Cryptography;
using HostVM.Storage.Tests;

namespace HostVM.Integration.Tests;

/// <summary>
/// VMs made from an image get a qcow2 overlay on the image's disk (linked into the VM's directory as its base): a few
/// clusters each whatever the base's size, no copy; each guest writes its own disk and the base never changes.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class CloneTests
{
    private const long OverlayBytes = 4 * 64 * 1024; // header, refcount table, refcount block, L1 table

    [Fact]
    public async Task FiftyVmsFromOneImageShareItsDiskAndEachGuestWritesItsOwn()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        string imageDisk = Path.Combine(daemon.DataDir, "images", "guest", "disk.img");
        string baseHash = Sha256(imageDisk);

        var vms = new List<System.Text.Json.JsonElement>();
        for (int i = 0; i < 50; i++)
        {
            vms.Add(await daemon.CreateVmAsync(new { name = $"clone{i}", image = "guest", vcpus = 1, memory_mib = 128 }));
        }

        foreach (var vm in vms)
        {
            string dir = Path.Combine(daemon.DataDir, "vms", vm.GetProperty("id").GetString()!);
            Assert.Equal(OverlayBytes, new FileInfo(Path.Combine(dir, "disk.qcow2")).Length);
            Assert.Equal(Stat("%i", imageDisk), Stat("%i", Path.Combine(dir, "base.img"))); // the image's disk itself, linked
        }

        Assert.Equal("51", Stat("%h", imageDisk)); // the image and its 50 VMs

        // Three of them boot, each writes a file of its own on its ext4, and stops.
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, $"/v1/vms/clone{i}/start")).Status);
        }

        for (int i = 0; i < 3; i++)
        {
            await daemon.WaitForSerialAsync(vms[i], "HOSTVM-SHELL-READY");
            using var console = ConsoleConnection.Open(daemon.ConsoleSocket(vms[i]));
            var (status, output) = await console.RunAsync($"mount -t ext4 /dev/vda /mnt && echo clone{i} > /mnt/own.txt && (cd /mnt/hostvm && sha256sum -c -s blob.sha256) && umount /mnt && sync");
            Assert.True(status == 0, output);
            Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, $"/v1/vms/clone{i}/stop", new { timeout_s = 10 })).Status);
        }

        Assert.Equal(baseHash, Sha256(imageDisk));
        for (int i = 0; i < 3; i++)
        {
            string dir = Path.Combine(daemon.DataDir, "vms", vms[i].GetProperty("id").GetString()!);
            string overlay = Path.Combine(dir, "disk.qcow2");
            Assert.Contains("No errors were found", QemuTools.Check("qemu-img", dir, "check", overlay), StringComparison.Ordinal);
            string flat = Path.Combine(daemon.Root, $"flat{i}.ext4");
            QemuTools.Check("qemu-img", dir, "convert", "-O", "raw", overlay, flat);
            Assert.Equal($"clone{i}\n", DebugfsCat(flat, "/own.txt"));
            File.Delete(flat);
        }
    }

    private static string Sha256(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }

    private static string Stat(string format, string path) => Run("stat", "-c", format, path).Trim();

    private static string DebugfsCat(string image, string path) => Run("debugfs", "-R", $"cat {path}", image);

    private static string Run(string program, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var error = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{program} {string.Join(' ', args)}: {error.Result}");
        return output;
    }
}
