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
            string dir = Path.Combine(daemon.DataDir, "vms", vm.GetProperty("id").GetString()!, "disks");
            Assert.Equal(OverlayBytes, new FileInfo(Path.Combine(dir, "disk.qcow2")).Length);
            Assert.Equal(Stat("%i", imageDisk), Stat("%i", Path.Combine(dir, "base.img"))); // the image's disk itself, linked
        }

        Assert.Equal("51", Stat("%h", imageDisk)); // the image and its 50 VMs

        // Every one of them boots, writes a file of its own on its ext4 (after checking what the image put there), and
        // stops: a few at a time, as many as this machine's cores keep busy without starving a guest's boot.
        using (var gate = new SemaphoreSlim(Math.Max(2, Environment.ProcessorCount * 2)))
        {
            await Task.WhenAll(vms.Select(async (vm, i) =>
            {
                await gate.WaitAsync();
                try
                {
                    Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, $"/v1/vms/clone{i}/start")).Status);
                    await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
                    using var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm));
                    var (status, output) = await console.RunAsync($"mount -t ext4 /dev/vda /mnt && echo clone{i} > /mnt/own.txt && (cd /mnt/hostvm && sha256sum -c -s blob.sha256) && umount /mnt && sync");
                    Assert.True(status == 0, $"clone{i}: {output}");
                    Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, $"/v1/vms/clone{i}/stop", new { timeout_s = 10 })).Status);
                }
                finally
                {
                    gate.Release();
                }
            }));
        }

        Assert.Equal(baseHash, Sha256(imageDisk));
        for (int i = 0; i < vms.Count; i++)
        {
            string dir = Path.Combine(daemon.DataDir, "vms", vms[i].GetProperty("id").GetString()!, "disks");
            string overlay = Path.Combine(dir, "disk.qcow2");
            Assert.Contains("No errors were found", QemuTools.Check("qemu-img", dir, "check", overlay), StringComparison.Ordinal);
            string flat = Path.Combine(daemon.Root, $"flat{i}.ext4");
            QemuTools.Check("qemu-img", dir, "convert", "-O", "raw", overlay, flat);
            Assert.Equal($"clone{i}\n", DebugfsCat(flat, "/own.txt"));
            File.Delete(flat);
        }
    }

    [Fact]
    public async Task AStoppedVmIsClonedWithoutACopyAndMadeIntoAnImage()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        var source = await daemon.CreateVmAsync(new { name = "src", image = "guest", memory_mib = 128 });
        string sourceDir = Path.Combine(daemon.DataDir, "vms", source.GetProperty("id").GetString()!, "disks");
        await WriteOwnFileAsync(daemon, source, "src", "before-the-clone");

        Assert.Equal(400, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = "bad", clone_of = "src", image = "guest" })).Status);
        var (status, clone) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = "copy", clone_of = "src", vcpus = 2 });
        Assert.True(status == 201, clone.ToString());
        Assert.Equal(2, clone.GetProperty("vcpus").GetInt32());
        Assert.Equal(source.GetProperty("memory_mib").GetInt64(), clone.GetProperty("memory_mib").GetInt64());
        string cloneDir = Path.Combine(daemon.DataDir, "vms", clone.GetProperty("id").GetString()!, "disks");

        // The source's disk so far is one layer, shared by name (a hard link), under a new overlay in each VM.
        string layer = Assert.Single(clone.GetProperty("disk_layers").EnumerateArray()).GetString()!;
        var sourceNow = await daemon.GetAsync("/v1/vms/src");
        Assert.Equal(layer, Assert.Single(sourceNow.GetProperty("disk_layers").EnumerateArray()).GetString());
        Assert.Equal(Stat("%i", Path.Combine(sourceDir, layer)), Stat("%i", Path.Combine(cloneDir, layer)));
        foreach (string dir in new[] { sourceDir, cloneDir })
        {
            Assert.Equal(OverlayBytes, new FileInfo(Path.Combine(dir, "disk.qcow2")).Length);
            Assert.Contains($"backing file: {layer}", QemuTools.Check("qemu-img", dir, "info", "disk.qcow2"), StringComparison.Ordinal);
        }

        // Each writes its own; the layer does not change.
        string layerHash = Sha256(Path.Combine(sourceDir, layer));
        Assert.Contains("was: before-the-clone", await WriteOwnFileAsync(daemon, clone, "copy", "clone-wrote"), StringComparison.Ordinal);
        await WriteOwnFileAsync(daemon, sourceNow, "src", "source-wrote");
        Assert.Equal(layerHash, Sha256(Path.Combine(sourceDir, layer)));
        Assert.Equal("clone-wrote\n", OwnFile(daemon, cloneDir));
        Assert.Equal("source-wrote\n", OwnFile(daemon, sourceDir));

        // A running VM is not cloned.
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/src/start")).Status);
        Assert.Equal(409, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = "late", clone_of = "src" })).Status);
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/src/stop", new { force = true })).Status);

        // A template from the source: its disk as the guest sees it (base, layer and overlay), flattened.
        var (made, image) = await daemon.SendAsync(HttpMethod.Post, "/v1/images", new { name = "tmpl", from_vm = "src" });
        Assert.True(made == 201, image.ToString());
        Assert.Equal("source-wrote\n", DebugfsCat(Path.Combine(daemon.DataDir, "images", "tmpl", "disk.img"), "/own.txt"));

        // Deleting the source leaves the clone whole (its names for the shared files are its own).
        Assert.Equal(204, (await daemon.SendAsync(HttpMethod.Delete, "/v1/vms/src?purge=true")).Status);
        QemuTools.Check("qemu-img", cloneDir, "check", "disk.qcow2");
        Assert.Equal("clone-wrote\n", OwnFile(daemon, cloneDir));
    }

    [Fact]
    public async Task AFreezeTheDaemonDiedInIsFinishedOrUndoneAtItsNextStart()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        var source = await daemon.CreateVmAsync(new { name = "src", image = "guest" });
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = "copy", clone_of = "src" })).Status);
        string dir = Path.Combine(daemon.DataDir, "vms", source.GetProperty("id").GetString()!, "disks");
        string layer = (await daemon.GetAsync("/v1/vms/src")).GetProperty("disk_layers")[0].GetString()!;
        string before = Stat("%i", Path.Combine(dir, "disk.qcow2"));

        // Died after recording the layer, before the rename: the new overlay is put in place. Died before recording
        // one: that overlay and the layer's name go.
        await daemon.KillAndRestartAsync(() =>
        {
            QemuTools.Check("qemu-img", dir, "create", "-f", "qcow2", "-b", layer, "-F", "qcow2", "disk.next.qcow2");
            QemuTools.Check("qemu-img", dir, "create", "-f", "qcow2", "layer-0123456789abcdef0123456789abcdef.qcow2", "1M");
        });
        Assert.NotEqual(before, Stat("%i", Path.Combine(dir, "disk.qcow2")));
        Assert.False(File.Exists(Path.Combine(dir, "disk.next.qcow2")));
        Assert.False(File.Exists(Path.Combine(dir, "layer-0123456789abcdef0123456789abcdef.qcow2")));

        await daemon.KillAndRestartAsync(() =>
            QemuTools.Check("qemu-img", dir, "create", "-f", "qcow2", "-b", "layer-0123456789abcdef0123456789abcdef.qcow2", "-F", "qcow2", "-u", "disk.next.qcow2", "64M"));
        Assert.False(File.Exists(Path.Combine(dir, "disk.next.qcow2")));
        Assert.Contains($"backing file: {layer}", QemuTools.Check("qemu-img", dir, "info", "disk.qcow2"), StringComparison.Ordinal);

        // A VM made before the chain had a directory of its own: its files move into one, their names unchanged.
        string[] files = [.. Directory.GetFiles(dir).Select(Path.GetFileName)!];
        await daemon.KillAndRestartAsync(() =>
        {
            foreach (string file in files)
            {
                File.Move(Path.Combine(dir, file), Path.Combine(dir, "..", file));
            }

            Directory.Delete(dir);
        });
        Assert.Equal(files.Order(), Directory.GetFiles(dir).Select(Path.GetFileName).Order());
        Assert.Contains($"backing file: {layer}", QemuTools.Check("qemu-img", dir, "info", "disk.qcow2"), StringComparison.Ordinal);
        await WriteOwnFileAsync(daemon, source, "src", "after-the-move");
        Assert.Equal("after-the-move\n", OwnFile(daemon, dir));
    }

    [Fact]
    public async Task ClonesOfAnUnchangedVmShareItsLastLayerAndItsBitmapsStayWithIt()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        var source = await daemon.CreateVmAsync(new { name = "src", image = "guest" });
        string dir = Path.Combine(daemon.DataDir, "vms", source.GetProperty("id").GetString()!, "disks");
        Assert.Equal(204, (await daemon.SendAsync(HttpMethod.Put, "/v1/vms/src/disks/disk/bitmaps", new { action = "add", name = "b1" })).Status);

        // Two clones of the unchanged VM: one layer, shared by the three.
        var clones = new List<string>();
        for (int i = 0; i < 2; i++)
        {
            var (status, clone) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = $"a{i}", clone_of = "src" });
            Assert.True(status == 201, clone.ToString());
            clones.Add(Assert.Single(clone.GetProperty("disk_layers").EnumerateArray()).GetString()!);
        }

        string first = Assert.Single(Layers(await daemon.GetAsync("/v1/vms/src")));
        Assert.All(clones, l => Assert.Equal(first, l));
        Assert.Equal("3", Stat("%h", Path.Combine(dir, first)));
        Assert.Equal("b1", Assert.Single((await daemon.GetAsync("/v1/vms/src/disks/disk/bitmaps")).EnumerateArray()).GetProperty("name").GetString());

        // QEMU writes the source's disk (and marks its bitmap): the next clone freezes that change into a second layer, and
        // the bitmap with the bit QEMU set stays with the source's disk.
        QemuTools.Check("qemu-io", dir, "-c", "write -P 0x5a 1M 64k", "disk.qcow2");
        Assert.Contains(1L << 20, Extents(await daemon.GetAsync("/v1/vms/src/disks/disk/bitmaps/b1/extents")));
        var (made, third) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = "a2", clone_of = "src" });
        Assert.True(made == 201, third.ToString());
        var layers = Layers(await daemon.GetAsync("/v1/vms/src"));
        Assert.Equal(2, layers.Count);
        Assert.Equal(first, layers[0]);
        Assert.Equal(layers, Layers(third));
        Assert.Equal("b1", Assert.Single((await daemon.GetAsync("/v1/vms/src/disks/disk/bitmaps")).EnumerateArray()).GetProperty("name").GetString());
        Assert.Contains(1L << 20, Extents(await daemon.GetAsync("/v1/vms/src/disks/disk/bitmaps/b1/extents")));
        Assert.Contains("No errors were found", QemuTools.Check("qemu-img", dir, "check", "disk.qcow2"), StringComparison.Ordinal);

        // At the most layers a VM may have, a clone of it unchanged still shares the last; once it changed, it is refused.
        while (Layers(await daemon.GetAsync("/v1/vms/src")).Count < 32)
        {
            var (jobStatus, job) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/src/disks/disk/job", new { type = "snapshot" });
            Assert.True(jobStatus == 200, job.ToString());
        }

        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = "a3", clone_of = "src" })).Status);
        QemuTools.Check("qemu-io", dir, "-c", "write -P 0xa5 2M 64k", "disk.qcow2");
        var (refused, problem) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = "a4", clone_of = "src" });
        Assert.Equal(409, refused);
        Assert.Contains("32 layers", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(404, (await daemon.SendAsync(HttpMethod.Get, "/v1/vms/a4")).Status);
        Assert.Equal(32, Layers(await daemon.GetAsync("/v1/vms/src")).Count);
        Assert.Contains(2L << 20, Extents(await daemon.GetAsync("/v1/vms/src/disks/disk/bitmaps/b1/extents")));
    }

    [Fact]
    public async Task ADiskWhoseHeaderItsVmmRewroteIsNotFollowedByTheDaemon()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        var vm = await daemon.CreateVmAsync(new { name = "hostile", image = "guest" });
        string dir = Path.Combine(daemon.DataDir, "vms", vm.GetProperty("id").GetString()!, "disks");

        // What a compromised VMM can do to the overlay it has open: name a host file as its backing file.
        QemuTools.Check("qemu-img", dir, "rebase", "-u", "-b", "/etc/passwd", "-F", "raw", "disk.qcow2");
        var (status, problem) = await daemon.SendAsync(HttpMethod.Post, "/v1/images", new { name = "leak", from_vm = "hostile" });
        Assert.Equal(409, status);
        Assert.Contains("refused", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal(404, (await daemon.SendAsync(HttpMethod.Get, "/v1/images/leak")).Status);
        Assert.Equal(409, (await daemon.SendAsync(HttpMethod.Get, "/v1/vms/hostile/disks/disk/bitmaps")).Status);
    }

    /// <summary>Boots the VM, writes <paramref name="text"/> into /own.txt on its ext4, and stops it; returns what the guest printed (the file's old content after "was: ").</summary>
    private static async Task<string> WriteOwnFileAsync(DaemonUnderTest daemon, System.Text.Json.JsonElement vm, string name, string text)
    {
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, $"/v1/vms/{name}/start")).Status);
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
        int status;
        string output;
        using (var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm)))
        {
            (status, output) = await console.RunAsync($"mount -t ext4 /dev/vda /mnt && echo was: $(cat /mnt/own.txt 2>/dev/null) && echo '{text}' > /mnt/own.txt && umount /mnt && sync");
            Assert.True(status == 0, output);
        }

        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, $"/v1/vms/{name}/stop", new { timeout_s = 20 })).Status);
        File.Delete(daemon.SerialLog(vm)); // the next boot's marker is the next boot's
        return output;
    }

    /// <summary>/own.txt on the VM's disk as qemu-img reads its whole chain.</summary>
    private static string OwnFile(DaemonUnderTest daemon, string vmDir)
    {
        string flat = Path.Combine(daemon.Root, $"flat-{Guid.NewGuid():N}.ext4");
        QemuTools.Check("qemu-img", vmDir, "convert", "-O", "raw", "disk.qcow2", flat);
        try
        {
            return DebugfsCat(flat, "/own.txt");
        }
        finally
        {
            File.Delete(flat);
        }
    }

    private static List<string> Layers(System.Text.Json.JsonElement vm) => [.. vm.GetProperty("disk_layers").EnumerateArray().Select(l => l.GetString()!)];

    /// <summary>Where each extent of a bitmap starts.</summary>
    private static List<long> Extents(System.Text.Json.JsonElement extents) => [.. extents.EnumerateArray().Select(e => e.GetProperty("offset").GetInt64())];

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
