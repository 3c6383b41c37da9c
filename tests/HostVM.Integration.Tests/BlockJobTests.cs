using System.Security.Cryptography;
using System.Text.Json;
using HostVM.Storage.Tests;

namespace HostVM.Integration.Tests;

/// <summary>
/// Live block jobs through the `hostvm` client on a real guest that keeps writing: a snapshot, a commit into it, another
/// snapshot and a stream, the guest's data checked after each, and at the end the disk's file (read by qemu-img, an
/// independent reader) equal to what the guest reads. And a VMM killed in the middle of a commit: every file is sound and
/// the chain the record names reads what the guest had written.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class BlockJobTests
{
    private const string Writer = "touch /tmp/go; (i=0; while [ -e /tmp/go ]; do dd if=/dev/urandom of=/dev/vda bs=4096 count=1 seek=$((4096 + i % 512)) conv=fsync 2>/dev/null; i=$((i + 1)); done; touch /tmp/stopped) & :";

    private static async Task<string> GuestAsync(ConsoleConnection console, string command)
    {
        var (status, output) = await console.RunAsync(command, 120);
        Assert.True(status == 0, $"{command}: {output}");
        return output;
    }

    private static string Md5Of(string output) =>
        System.Text.RegularExpressions.Regex.Match(output, "\\b([0-9a-f]{32})\\b").Groups[1].Value is { Length: 32 } md5 ? md5 : throw new Xunit.Sdk.XunitException($"no md5 in: {output}");

    private static JsonElement Job(DaemonUnderTest daemon, string type, params string[] more)
    {
        using var json = JsonDocument.Parse(DaemonCli.Ok(daemon, ["vm", "disk", type, "bj", "-o", "json", .. more]));
        return json.RootElement.Clone();
    }

    private static string RawMd5(string directory, string file)
    {
        string raw = Path.Combine(directory, "..", "flat.raw");
        QemuTools.Check("qemu-img", directory, "convert", "-O", "raw", file, raw);
        try
        {
            using var stream = File.OpenRead(raw);
            return Convert.ToHexStringLower(MD5.HashData(stream));
        }
        finally
        {
            File.Delete(raw);
        }
    }

    [Fact]
    public async Task SnapshotCommitAndStreamWhileTheGuestWritesKeepItsData()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        var vm = await daemon.CreateVmAsync(new { name = "bj", image = "guest", restart_policy = "never" });
        string disks = Path.Combine(daemon.DataDir, "vms", vm.GetProperty("id").GetString()!, "disks");
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/bj/start")).Status);
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
        using var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm));

        // Known data at 8 MiB, then a writer that goes on through every job (4 KiB blocks from 16 MiB).
        await GuestAsync(console, "dd if=/dev/urandom of=/dev/vda bs=65536 count=16 seek=128 conv=fsync 2>/dev/null");
        string known = Md5Of(await GuestAsync(console, "dd if=/dev/vda bs=65536 count=16 skip=128 2>/dev/null | md5sum"));
        await GuestAsync(console, Writer);

        async Task KnownDataIsThere(string after) =>
            Assert.True(known == Md5Of(await GuestAsync(console, "dd if=/dev/vda bs=65536 count=16 skip=128 2>/dev/null | md5sum")), $"the guest's data changed after the {after}");

        var snapshot = Job(daemon, "snapshot");
        Assert.Equal("completed", snapshot.GetProperty("state").GetString());
        string layer = snapshot.GetProperty("layer").GetString()!;
        Assert.True(File.Exists(Path.Combine(disks, layer)), $"the layer {layer} is in {disks}");
        Assert.Contains($"backing file: {layer}", QemuTools.Check("qemu-img", disks, "info", "-U", "disk.qcow2"), StringComparison.Ordinal);
        await KnownDataIsThere("snapshot");

        // The overlay now holds the writer's blocks; commit them down into the layer, which becomes the disk.
        await GuestAsync(console, "sleep 1");
        var commit = Job(daemon, "commit");
        Assert.True(commit.GetProperty("state").GetString() == "completed", commit.ToString());
        Assert.False(File.Exists(Path.Combine(disks, layer)), "the committed layer is the overlay now, under the overlay's name");
        Assert.Contains("backing file: base.img", QemuTools.Check("qemu-img", disks, "info", "-U", "disk.qcow2"), StringComparison.Ordinal);
        await KnownDataIsThere("commit");

        // Commit refuses the image's base, which other VMs share.
        var (code, _, stderr) = DaemonCli.Hostvm(daemon, "vm", "disk", "commit", "bj");
        Assert.True(code != 0 && stderr.Contains("share", StringComparison.Ordinal), stderr);

        Assert.Equal("completed", Job(daemon, "snapshot").GetProperty("state").GetString());
        var stream = Job(daemon, "stream");
        Assert.True(stream.GetProperty("state").GetString() == "completed", stream.ToString());
        Assert.Equal(stream.GetProperty("total_bytes").GetInt64(), stream.GetProperty("done_bytes").GetInt64());
        Assert.DoesNotContain("backing file", QemuTools.Check("qemu-img", disks, "info", "-U", "disk.qcow2"), StringComparison.Ordinal);
        Assert.Equal(["disk.qcow2"], Directory.GetFiles(disks).Select(Path.GetFileName));
        await KnownDataIsThere("stream");

        // The writer stops; the file, read by qemu-img, is what the guest reads.
        await GuestAsync(console, "rm /tmp/go; while [ ! -e /tmp/stopped ]; do sleep 0.2; done; sync");
        string guest = Md5Of(await GuestAsync(console, "md5sum /dev/vda"));
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/bj/stop", new { timeout_s = 20 })).Status);
        Assert.Contains("No errors were found", QemuTools.Check("qemu-img", disks, "check", "disk.qcow2"), StringComparison.Ordinal);
        Assert.Equal(guest, RawMd5(disks, "disk.qcow2"));
        var events = await daemon.GetAsync("/v1/events?vm=bj");
        Assert.Contains(events.EnumerateArray(), e => e.GetProperty("message").GetString()!.Contains("stream completed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AVmmKilledDuringACommitLeavesAChainThatReadsTheGuestsData()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        var vm = await daemon.CreateVmAsync(new { name = "bj", image = "guest", restart_policy = "never" });
        string disks = Path.Combine(daemon.DataDir, "vms", vm.GetProperty("id").GetString()!, "disks");

        // A snapshot of the stopped VM (the daemon's own freeze), then the guest fills the overlay.
        Assert.Equal("completed", Job(daemon, "snapshot").GetProperty("state").GetString());
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/bj/start")).Status);
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
        string guest;
        using (var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm)))
        {
            await GuestAsync(console, "dd if=/dev/urandom of=/dev/vda bs=1048576 count=24 conv=fsync 2>/dev/null");
            guest = Md5Of(await GuestAsync(console, "md5sum /dev/vda"));
        }

        Job(daemon, "commit", "--no-wait"); // started, then the VMM dies wherever the copy is
        DaemonUnderTest.ProcessKill((await daemon.GetAsync("/v1/vms/bj")).GetProperty("pid").GetInt32(), 9);
        for (int i = 0; i < 100 && (await daemon.GetAsync("/v1/vms/bj")).GetProperty("state").GetString() != "failed"; i++)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }

        // Whatever the record names now reads the guest's data, and no file is corrupt (leaks at most).
        foreach (string file in Directory.GetFiles(disks, "*.qcow2"))
        {
            var (checkCode, output) = QemuTools.Run("qemu-img", disks, "check", Path.GetFileName(file));
            Assert.True(checkCode is 0 or 3, $"{file}: {output}");
        }

        Assert.Equal(guest, RawMd5(disks, "disk.qcow2"));

        // And the guest reads it after a restart.
        File.Delete(daemon.SerialLog(vm));
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/bj/start")).Status);
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
        using (var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm)))
        {
            Assert.Equal(guest, Md5Of(await GuestAsync(console, "md5sum /dev/vda")));
        }
    }
}
