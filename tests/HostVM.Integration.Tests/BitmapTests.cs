using System.Text.Json;
using HostVM.Storage.Tests;

namespace HostVM.Integration.Tests;

/// <summary>
/// Change tracking through the `hostvm` client and a real guest: bitmaps made, merged and cleared while the VM runs (its
/// VMM keeps them) and while it is stopped (the daemon edits the file), seen by qemu-img in the overlay, and stale after
/// the VMM is killed (so a backup from them would be a full one).
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class BitmapTests
{
    private const long Granularity = 64 * 1024;

    private static (int Code, string Stdout, string Stderr) Hostvm(DaemonUnderTest daemon, params string[] args) => DaemonCli.Hostvm(daemon, args);

    private static string Ok(DaemonUnderTest daemon, params string[] args) => DaemonCli.Ok(daemon, args);

    private static List<(long Offset, long Length)> Extents(DaemonUnderTest daemon, string bitmap)
    {
        using var json = JsonDocument.Parse(Ok(daemon, "vm", "bitmap", "extents", "bm", bitmap, "-o", "json"));
        return [.. json.RootElement.EnumerateArray().Select(e => (e.GetProperty("offset").GetInt64(), e.GetProperty("length").GetInt64()))];
    }

    private static async Task GuestWritesAsync(DaemonUnderTest daemon, JsonElement vm, long block)
    {
        using var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm));
        var (status, output) = await console.RunAsync($"dd if=/dev/urandom of=/dev/vda bs=4096 count=1 seek={block} 2>/dev/null && sync");
        Assert.True(status == 0, output);
    }

    [Fact]
    public async Task BitmapsRecordTheGuestsWritesWhileItRunsAndSurviveAStopButNotAKill()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        var vm = await daemon.CreateVmAsync(new { name = "bm", image = "guest", restart_policy = "never" });
        string dir = Path.Combine(daemon.DataDir, "vms", vm.GetProperty("id").GetString()!, "disks");

        // Made while stopped: in the file, where qemu-img sees it.
        Ok(daemon, "vm", "bitmap", "add", "bm", "changes");
        Assert.Contains("changes", QemuTools.Check("qemu-img", dir, "info", "disk.qcow2"), StringComparison.Ordinal);
        Assert.Empty(Extents(daemon, "changes"));

        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/bm/start")).Status);
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
        await GuestWritesAsync(daemon, vm, 2048); // 8 MiB in
        Assert.Contains((8L << 20, Granularity), Extents(daemon, "changes"));

        // Live: a second bitmap, a merge into it, and a clear.
        Ok(daemon, "vm", "bitmap", "add", "bm", "since-merge", "--granularity", "1M");
        Ok(daemon, "vm", "bitmap", "merge", "bm", "since-merge", "--from", "changes");
        Assert.Contains((8L << 20, 1L << 20), Extents(daemon, "since-merge"));
        Ok(daemon, "vm", "bitmap", "clear", "bm", "changes");
        Assert.Empty(Extents(daemon, "changes"));
        var (code, _, stderr) = Hostvm(daemon, "vm", "bitmap", "extents", "bm", "nothing");
        Assert.True(code == 1 && stderr.Contains("no bitmap 'nothing'", StringComparison.Ordinal), stderr);

        await GuestWritesAsync(daemon, vm, 4096); // 16 MiB in
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/bm/stop", new { timeout_s = 20 })).Status);

        // Stored at the clean stop: read back from the file, and qemu-img agrees the image is whole.
        Assert.Contains((16L << 20, Granularity), Extents(daemon, "changes"));
        Assert.DoesNotContain((8L << 20, Granularity), Extents(daemon, "changes"));
        string info = QemuTools.Check("qemu-img", dir, "info", "disk.qcow2");
        Assert.Contains("since-merge", info, StringComparison.Ordinal);
        Assert.Contains("No errors were found", QemuTools.Check("qemu-img", dir, "check", "disk.qcow2"), StringComparison.Ordinal);

        // Killed while recording: stale, no extents, until cleared.
        File.Delete(daemon.SerialLog(vm));
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/bm/start")).Status);
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
        DaemonUnderTest.ProcessKill((await daemon.GetAsync("/v1/vms/bm")).GetProperty("pid").GetInt32(), 9);
        for (int i = 0; i < 100 && (await daemon.GetAsync("/v1/vms/bm")).GetProperty("state").GetString() != "failed"; i++)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        (code, _, stderr) = Hostvm(daemon, "vm", "bitmap", "extents", "bm", "changes");
        Assert.True(code == 1 && stderr.Contains("stale", StringComparison.Ordinal), stderr);
        using (var list = JsonDocument.Parse(Ok(daemon, "vm", "bitmap", "list", "bm", "-o", "json")))
        {
            Assert.All(list.RootElement.EnumerateArray(), b => Assert.True(b.GetProperty("stale").GetBoolean()));
        }

        Ok(daemon, "vm", "bitmap", "clear", "bm", "changes");
        Assert.Empty(Extents(daemon, "changes"));
    }
}
