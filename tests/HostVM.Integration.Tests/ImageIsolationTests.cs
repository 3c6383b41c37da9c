using System.Net.Http.Json;
using System.Text.Json;
using HostVM.Host.Inventory;

namespace HostVM.Integration.Tests;

/// <summary>
/// A VM boots only its own image's files (the security review's F1): an image in use cannot be
/// deleted, a VM keeps its own links to its kernel and initrd, so an image that another tenant later
/// imports under the same name never reaches it, and a VM whose disk is missing does not start.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class ImageIsolationTests
{
    [Fact]
    public async Task AVmBootsOnlyItsOwnImagesFilesAndNeverAnotherTenantsUnderTheSameName()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        foreach (var project in new[] { "a", "b" })
        {
            Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/projects", new { name = project })).Status);
            // A project's token imports from its own directory in the import directory.
            string import = Directory.CreateDirectory(Path.Combine(daemon.DataDir, "import", project)).FullName;
            foreach (var f in new[] { "Image", "initramfs.cpio.gz", "bench-initramfs.cpio.gz", "disk.ext4" })
            {
                File.Copy(GuestArtifacts.Guest(f), Path.Combine(import, f));
            }
        }

        using var tenantA = daemon.ClientWith(await OperatorTokenAsync(daemon, "a"));
        string tokenB = await OperatorTokenAsync(daemon, "b");

        // Tenant A: image "base" (the shell guest, with a disk) and two VMs made from it.
        Assert.Equal(201, await StatusAsync(tenantA.PostAsJsonAsync("/v1/images", new { name = "base", kernel = "Image", initrd = "initramfs.cpio.gz", disk = "disk.ext4", boot_args = "console=ttyS0 quiet hostvm.mode=shell" })));
        Assert.Equal(201, await StatusAsync(tenantA.PostAsJsonAsync("/v1/vms", new { name = "a-web", image = "base", memory_mib = 128 })));
        Assert.Equal(201, await StatusAsync(tenantA.PostAsJsonAsync("/v1/vms", new { name = "a-old", image = "base", memory_mib = 128 })));
        var web = await daemon.GetAsync("/v1/vms/a-web");
        string webDir = Path.Combine(daemon.DataDir, "vms", web.GetProperty("id").GetString()!);
        string oldDir = Path.Combine(daemon.DataDir, "vms", (await daemon.GetAsync("/v1/vms/a-old")).GetProperty("id").GetString()!);
        Assert.True(File.Exists(Path.Combine(webDir, "kernel")) && File.Exists(Path.Combine(webDir, "initrd")), "the VM has its own kernel and initrd");

        // The image is in use: deleting it is refused, and the VMs using it are named.
        using (var refused = await tenantA.DeleteAsync("/v1/images/base"))
        {
            string body = await refused.Content.ReadAsStringAsync();
            Assert.True((int)refused.StatusCode == 409, body);
            Assert.Contains("a-old, a-web", body, StringComparison.Ordinal);
        }

        // The state the review describes (the image deleted under its VMs, as the daemon allowed
        // before): the image's row and files go while the daemon is down. a-old also loses its own
        // kernel, as a VM made before VMs kept one.
        await daemon.KillAndRestartAsync(() =>
        {
            using (var inventory = new InventoryStore(Path.Combine(daemon.DataDir, "hostvm.db")))
            {
                inventory.DeleteImage("base");
            }

            Directory.Delete(Path.Combine(daemon.DataDir, "images", "base"), recursive: true);
            File.Delete(Path.Combine(oldDir, "kernel"));
            File.Delete(Path.Combine(oldDir, "initrd"));
        });

        // Tenant B imports its own "base": a different initrd (the benchmark guest).
        using var tenantB = daemon.ClientWith(tokenB);
        Assert.Equal(201, await StatusAsync(tenantB.PostAsJsonAsync("/v1/images", new { name = "base", kernel = "Image", initrd = "bench-initramfs.cpio.gz", boot_args = "console=ttyS0 quiet" })));

        // a-web boots A's own files: the shell guest, not B's benchmark.
        var (status, started) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/a-web/start");
        Assert.True(status == 200, started.ToString());
        await daemon.WaitForSerialAsync(web, "HOSTVM-SHELL-READY");
        Assert.DoesNotContain("HOSTVM-BENCH", daemon.SerialText(web), StringComparison.Ordinal);
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/a-web/stop", new { force = true })).Status);

        // a-old has no kernel of its own, and "base" is now B's: it does not start, and says why.
        var (oldStatus, problem) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/a-old/start");
        Assert.Equal(409, oldStatus);
        Assert.Contains("no kernel of its own", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(oldDir, "kernel")), "B's kernel was not linked into A's VM");
        Assert.Equal("stopped", (await daemon.GetAsync("/v1/vms/a-old")).GetProperty("state").GetString());

        // A VM whose disk is missing does not start without it.
        File.Delete(Path.Combine(webDir, "disks", "disk.qcow2"));
        (status, problem) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/a-web/start");
        Assert.Equal(409, status);
        Assert.Contains("disk.qcow2 is missing", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Equal("stopped", (await daemon.GetAsync("/v1/vms/a-web")).GetProperty("state").GetString());
    }

    private static async Task<string> OperatorTokenAsync(DaemonUnderTest daemon, string project)
    {
        var (status, created) = await daemon.SendAsync(HttpMethod.Post, "/v1/tokens", new { role = "operator", project });
        Assert.Equal(201, status);
        return created.GetProperty("token").GetString()!;
    }

    private static async Task<int> StatusAsync(Task<HttpResponseMessage> request)
    {
        using var response = await request;
        return (int)response.StatusCode;
    }
}
