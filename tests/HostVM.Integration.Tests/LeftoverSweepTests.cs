using System.Text.Json;

namespace HostVM.Integration.Tests;

/// <summary>A daemon that died inside a create leaves directories; the next start sweeps them and keeps what it cannot place.</summary>
public sealed class LeftoverSweepTests
{
    [Fact]
    public async Task ARestartedDaemonRemovesHalfMadeVmsAndKeepsUnrecordedOnesAsOrphans()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        string kernel = Path.Combine(daemon.DataDir, "import", "kernel");
        await File.WriteAllBytesAsync(kernel, new byte[4096]);
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/images", new { name = "img", kernel })).Status);
        var kept = await daemon.CreateVmAsync(new { name = "kept", image = "img" });
        string vms = Path.Combine(daemon.DataDir, "vms");
        string keptDir = Path.Combine(vms, kept.GetProperty("id").GetString()!);

        string halfMade = Path.Combine(vms, Guid.NewGuid().ToString("N") + ".creating");
        string unrecordedId = Guid.NewGuid().ToString("N");
        await daemon.KillAndRestartAsync(() =>
        {
            // As a kill -9 inside create leaves them: before the move, and after it but before the row.
            Directory.CreateDirectory(halfMade);
            File.WriteAllBytes(Path.Combine(halfMade, "disk.img"), new byte[512]);
            Directory.CreateDirectory(Path.Combine(vms, unrecordedId));
            File.WriteAllText(Path.Combine(vms, unrecordedId, "disk.img"), "something");
        });

        Assert.False(Directory.Exists(halfMade), "the half-made VM is gone");
        Assert.False(Directory.Exists(Path.Combine(vms, unrecordedId)));
        Assert.Equal("something", File.ReadAllText(Path.Combine(daemon.DataDir, "orphans", $"unrecorded-{unrecordedId}", "disk.img")));
        Assert.True(Directory.Exists(keptDir), "a recorded VM's directory stays");
        Assert.Equal("stopped", (await daemon.GetAsync("/v1/vms/kept")).GetProperty("state").GetString());
    }

    /// <summary>
    /// A start whose record cannot be written (here the inventory is locked by another process, as a full disk would fail
    /// the write) fails, and leaves no VMM running: nothing would stop it, and the next start would run a second on its disk.
    /// </summary>
    [Fact]
    public async Task AStartThatCannotBeRecordedLeavesNoVmmRunning()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await File.WriteAllBytesAsync(Path.Combine(daemon.DataDir, "import", "spin"), SpinKernel.Image);
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/images", new { name = "spin", kernel = "spin" })).Status);
        var vm = await daemon.CreateVmAsync(new { name = "unrecorded", image = "spin", memory_mib = 64 });
        string log = Path.Combine(daemon.DataDir, "vms", vm.GetProperty("id").GetString()!, "vmm.log");

        using (var blocker = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(daemon.DataDir, "hostvm.db")};Pooling=False"))
        {
            blocker.Open();
            using var begin = blocker.CreateCommand();
            begin.CommandText = "BEGIN EXCLUSIVE";
            begin.ExecuteNonQuery();
            var (status, body) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/unrecorded/start");
            Assert.True(status >= 500, $"{status} {body}");
            Assert.True(File.Exists(log), "the VMM was launched before its record failed");

            // The VMM is gone when the answer comes; a jail's unshare, its parent, follows it within moments.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            while (DaemonUnderTest.ProcessesWithEnvironment($"HOSTVM_VMM_LOG={log}").Count > 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }

            Assert.Empty(DaemonUnderTest.ProcessesWithEnvironment($"HOSTVM_VMM_LOG={log}"));
        }

        Assert.Equal("stopped", (await daemon.GetAsync("/v1/vms/unrecorded")).GetProperty("state").GetString());
        var (again, started) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/unrecorded/start");
        Assert.True(again == 200, started.ToString());
        Assert.Contains(started.GetProperty("pid").GetInt32(), DaemonUnderTest.ProcessesWithEnvironment($"HOSTVM_VMM_LOG={log}"));
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/unrecorded/stop", new { force = true })).Status); // the spin kernel ignores the power button
    }

    /// <summary>
    /// kill -9 of the daemon while creates (with start) and imports are under way, at a spread of moments (from before the
    /// request is read to after it is answered): whatever the moment, the restarted daemon has every VM and image it lists
    /// whole, nothing it does not list, no VM left starting, and no VMM running that it does not know of.
    /// </summary>
    [Fact]
    public async Task KillingTheDaemonInsideCreatesAndImportsLeavesNothingHalfMade()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        string import = Path.Combine(daemon.DataDir, "import");
        await File.WriteAllBytesAsync(Path.Combine(import, "spin"), SpinKernel.Image);
        var disk = new byte[24 << 20];
        Random.Shared.NextBytes(disk); // not sparse: the copies take a while, so kills land inside them
        await File.WriteAllBytesAsync(Path.Combine(import, "disk"), disk);
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/images", new { name = "base", kernel = "spin", disk = "disk" })).Status);

        int[] delaysMs = [0, 3, 10, 25, 60, 120, 250, 500];
        for (int round = 0; round < delaysMs.Length; round++)
        {
            var create = daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = $"vm{round}", image = "base", memory_mib = 64, start = true, restart_policy = "never" });
            var importing = daemon.SendAsync(HttpMethod.Post, "/v1/images", new { name = $"img{round}", kernel = "spin", disk = "disk" });
            await Task.Delay(delaysMs[round]);
            await daemon.KillAndRestartAsync();
            await Task.WhenAll(Swallow(create), Swallow(importing));
            await AssertWholeAsync(daemon, disk.Length);
        }
    }

    private static async Task Swallow(Task task)
    {
        try
        {
            await task;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
        {
            // The daemon died under it: no answer is the point.
        }
    }

    private static async Task AssertWholeAsync(DaemonUnderTest daemon, long diskBytes)
    {
        var images = (await daemon.GetAsync("/v1/images")).EnumerateArray().Select(i => i.GetProperty("name").GetString()!).ToHashSet();
        string imageRoot = Path.Combine(daemon.DataDir, "images");
        Assert.Equal(images.Order(), Directory.GetDirectories(imageRoot).Select(d => Path.GetFileName(d)!).Order());
        foreach (string image in images)
        {
            Assert.Equal(diskBytes, new FileInfo(Path.Combine(imageRoot, image, "disk.img")).Length);
            Assert.Equal(SpinKernel.Image.Length, new FileInfo(Path.Combine(imageRoot, image, "kernel")).Length);
        }

        var vms = (await daemon.GetAsync("/v1/vms")).EnumerateArray().ToList();
        string vmRoot = Path.Combine(daemon.DataDir, "vms");
        Assert.Equal(vms.Select(v => v.GetProperty("id").GetString()!).Order(), Directory.GetDirectories(vmRoot).Select(d => Path.GetFileName(d)!).Order());
        var known = new HashSet<int>();
        foreach (var vm in vms)
        {
            string dir = Path.Combine(vmRoot, vm.GetProperty("id").GetString()!);
            Assert.Equal(diskBytes, new FileInfo(Path.Combine(dir, "disks", "base.img")).Length);
            Assert.True(File.Exists(Path.Combine(dir, "disks", "disk.qcow2")), $"{dir} has its disk");
            Assert.True(File.Exists(Path.Combine(dir, "kernel")), $"{dir} has its kernel");
            string state = vm.GetProperty("state").GetString()!;
            Assert.True(state is "running" or "stopped" or "failed", $"{vm.GetProperty("name")} is {state}");
            if (state == "running")
            {
                int pid = vm.GetProperty("pid").GetInt32();
                Assert.True(DaemonUnderTest.Alive(pid), $"{vm.GetProperty("name")}'s VMM (pid {pid}) runs");
                known.Add(pid);
            }
        }

        // Every VMM of this daemon's VMs is one it knows: none was left running unrecorded beside a new one.
        var vmms = DaemonUnderTest.ProcessesWithEnvironment($"HOSTVM_RUNTIME_DIR={daemon.RuntimeDir}")
            .Where(p => ReadCommandLine(p) is var command && command.Contains("--id vm", StringComparison.Ordinal)
                && !command.StartsWith("unshare ", StringComparison.Ordinal)).ToList(); // not a jail's waiting parent
        Assert.All(vmms, p => Assert.Contains(p, known));
    }

    private static string ReadCommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }
}
