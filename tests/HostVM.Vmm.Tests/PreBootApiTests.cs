using System.Net;

namespace HostVM.Vmm.Tests;

/// <summary>The control API before InstanceStart: what it accepts, what it refuses and with which message.</summary>
public sealed class PreBootApiTests : IAsyncLifetime
{
    private VmmApiFixture _api = null!;

    public async ValueTask InitializeAsync() => _api = await VmmApiFixture.StartAsync();

    public async ValueTask DisposeAsync() => await _api.DisposeAsync();

    [Fact]
    public async Task ADrivesPathMayBeAnNbdUriCheckedAsAUriNotAFile()
    {
        // Not connected before InstanceStart: the server need not be up yet.
        await _api.NoContentAsync("PUT", "/drives/remote", """{"drive_id": "remote", "path_on_host": "nbd://127.0.0.1:1/disk", "is_root_device": false}""");
        await _api.NoContentAsync("PUT", "/drives/local", """{"drive_id": "local", "path_on_host": "nbd+unix:///disk?socket=/run/nbd.sock", "is_root_device": false}""");
        Assert.Contains("needs ?socket=PATH", await _api.FaultAsync("PUT", "/drives/x", """{"drive_id": "x", "path_on_host": "nbd+unix:///disk", "is_root_device": false}"""), StringComparison.Ordinal);
        Assert.Contains("port 'x'", await _api.FaultAsync("PUT", "/drives/x", """{"drive_id": "x", "path_on_host": "nbd://h:x/disk", "is_root_device": false}"""), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DescribesTheInstanceAsNotStarted()
    {
        var info = await _api.GetAsync("/");
        Assert.Equal("HostVM", info.GetProperty("app_name").GetString());
        Assert.Equal("test-vm", info.GetProperty("id").GetString());
        Assert.Equal("Not started", info.GetProperty("state").GetString());
        Assert.False(string.IsNullOrEmpty(info.GetProperty("vmm_version").GetString()));
        Assert.False(string.IsNullOrEmpty((await _api.GetAsync("/version")).GetProperty("firecracker_version").GetString()));
    }

    [Fact]
    public async Task MachineConfigDefaultsPutAndPatch()
    {
        var config = await _api.GetAsync("/machine-config");
        Assert.Equal(1, config.GetProperty("vcpu_count").GetInt32());
        Assert.Equal(128, config.GetProperty("mem_size_mib").GetInt32());

        await _api.NoContentAsync("PUT", "/machine-config", """{"vcpu_count": 2, "mem_size_mib": 256, "smt": false}""");
        await _api.NoContentAsync("PATCH", "/machine-config", """{"mem_size_mib": 512}""");
        config = await _api.GetAsync("/machine-config");
        Assert.Equal(2, config.GetProperty("vcpu_count").GetInt32());
        Assert.Equal(512, config.GetProperty("mem_size_mib").GetInt32());
        Assert.False(config.GetProperty("smt").GetBoolean());
    }

    [Theory]
    [InlineData("""{"vcpu_count": 2, "mem_size_mib": 256, "smt": true}""", "x86")]
    [InlineData("""{"vcpu_count": 2, "mem_size_mib": 256, "cpu_template": "T2"}""", "x86")]
    [InlineData("""{"vcpu_count": 0, "mem_size_mib": 256}""", "vcpu_count")]
    [InlineData("""{"vcpu_count": 9, "mem_size_mib": 256}""", "vcpu_count")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 8}""", "mem_size_mib")]
    [InlineData("""{"vcpu_count": 1}""", "mem_size_mib")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 64, "huge_pages": "2M"}""", "huge_pages")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 64, "cpu_cap_percent": 0}""", "cpu_cap_percent")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 64, "cpu_cap_percent": 101}""", "cpu_cap_percent")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": 64, "vcpus": 2}""", "Unknown field 'vcpus'")]
    [InlineData("""{"vcpu_count": "two", "mem_size_mib": 64}""", "vcpu_count")]
    [InlineData("""{"vcpu_count": 1, "mem_size_mib": """, "not valid JSON")]
    [InlineData("""[1, 2]""", "")]
    public async Task BadMachineConfigIsRefusedAndChangesNothing(string body, string mentions)
    {
        string fault = await _api.FaultAsync("PUT", "/machine-config", body);
        Assert.Contains(mentions, fault, StringComparison.Ordinal);
        var config = await _api.GetAsync("/machine-config");
        Assert.Equal(1, config.GetProperty("vcpu_count").GetInt32());
        Assert.Equal(128, config.GetProperty("mem_size_mib").GetInt32());
    }

    [Fact]
    public async Task BootSourceNeedsAnExistingKernel()
    {
        Assert.Contains("kernel_image_path", await _api.FaultAsync("PUT", "/boot-source", """{"boot_args": "console=ttyS0"}"""), StringComparison.Ordinal);
        Assert.Contains("no such file", await _api.FaultAsync("PUT", "/boot-source", """{"kernel_image_path": "/nonexistent/Image"}"""), StringComparison.Ordinal);
        Assert.Contains("directory", await _api.FaultAsync("PUT", "/boot-source", $$"""{"kernel_image_path": "{{_api.Directory}}"}"""), StringComparison.Ordinal);
        string kernel = _api.File("Image");
        Assert.Contains("initrd_path", await _api.FaultAsync("PUT", "/boot-source", $$"""{"kernel_image_path": "{{kernel}}", "initrd_path": "/nope"}"""), StringComparison.Ordinal);
        await _api.NoContentAsync("PUT", "/boot-source", $$"""{"kernel_image_path": "{{kernel}}", "boot_args": "console=ttyS0"}""");
        var config = await _api.GetAsync("/vm/config");
        Assert.Equal(kernel, config.GetProperty("boot-source").GetProperty("kernel_image_path").GetString());
    }

    [Fact]
    public async Task DrivesAreCheckedAndListedInOrder()
    {
        string root = _api.File("root.img");
        string data = _api.File("data.img");
        await _api.NoContentAsync("PUT", "/drives/rootfs", $$"""{"drive_id": "rootfs", "path_on_host": "{{root}}", "is_root_device": true, "is_read_only": false}""");
        await _api.NoContentAsync("PUT", "/drives/data", """{"drive_id": "data", "path_on_host": "DATA", "is_root_device": false, "rate_limiter": {"bandwidth": {"size": 1048576, "refill_time": 1000}}}""".Replace("DATA", data, StringComparison.Ordinal));

        Assert.Contains("does not match", await _api.FaultAsync("PUT", "/drives/other", $$"""{"drive_id": "data", "path_on_host": "{{data}}", "is_root_device": false}"""), StringComparison.Ordinal);
        Assert.Contains("is_root_device", await _api.FaultAsync("PUT", "/drives/x", $$"""{"drive_id": "x", "path_on_host": "{{data}}"}"""), StringComparison.Ordinal);
        Assert.Contains("root", await _api.FaultAsync("PUT", "/drives/x", $$"""{"drive_id": "x", "path_on_host": "{{data}}", "is_root_device": true}"""), StringComparison.Ordinal);
        Assert.Contains("no such file", await _api.FaultAsync("PUT", "/drives/x", """{"drive_id": "x", "path_on_host": "/nonexistent.img", "is_root_device": false}"""), StringComparison.Ordinal);
        Assert.Contains("vhost-user", await _api.FaultAsync("PUT", "/drives/x", """{"drive_id": "x", "socket": "/tmp/s", "is_root_device": false}"""), StringComparison.Ordinal);
        Assert.Contains("refill_time", await _api.FaultAsync("PUT", "/drives/x", """{"drive_id": "x", "path_on_host": "DATA", "is_root_device": false, "rate_limiter": {"ops": {"size": 10}}}""".Replace("DATA", data, StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.Contains("cache_type", await _api.FaultAsync("PUT", "/drives/x", $$"""{"drive_id": "x", "path_on_host": "{{data}}", "is_root_device": false, "cache_type": "None"}"""), StringComparison.Ordinal);
        Assert.Contains("PUT", await _api.FaultAsync("PATCH", "/drives/data", """{"drive_id": "data", "rate_limiter": {"ops": {"size": 10, "refill_time": 100}}}"""), StringComparison.Ordinal);
        Assert.Contains("drive_id", await _api.FaultAsync("PUT", "/drives/a%2Fb", $$"""{"drive_id": "a/b", "path_on_host": "{{data}}", "is_root_device": false}"""), StringComparison.Ordinal);

        var drives = (await _api.GetAsync("/vm/config")).GetProperty("drives").EnumerateArray().ToList();
        Assert.Equal(["rootfs", "data"], drives.Select(d => d.GetProperty("drive_id").GetString()));
        Assert.Equal(1048576, drives[1].GetProperty("rate_limiter").GetProperty("bandwidth").GetProperty("size").GetInt64());
    }

    [Theory]
    [InlineData("""{"iface_id": "eth0", "host_dev_name": "user", "guest_mac": "01:00:5e:00:00:01"}""", "multicast")]
    [InlineData("""{"iface_id": "eth0", "host_dev_name": "user", "guest_mac": "zz:00:00:00:00:01"}""", "guest_mac")]
    [InlineData("""{"iface_id": "eth0", "host_dev_name": "user", "mtu": 9000}""", "mtu")]
    [InlineData("""{"iface_id": "eth0"}""", "host_dev_name")]
    [InlineData("""{"iface_id": "eth0", "host_dev_name": "a-very-long-tap-name-indeed"}""", "TAP")]
    [InlineData("""{"iface_id": "eth0", "host_dev_name": "switch:../etc"}""", "switch")]
    [InlineData("""{"iface_id": "eth0", "host_dev_name": "user:hostfwd=tcp::99999-:80"}""", "hostfwd")]
    [InlineData("""{"iface_id": "eth0", "host_dev_name": "user:dns=1.1.1.1"}""", "hostfwd")]
    [InlineData("""{"iface_id": "eth1", "host_dev_name": "user"}""", "does not match")]
    public async Task BadNetworkInterfacesAreRefused(string body, string mentions)
    {
        Assert.Contains(mentions, await _api.FaultAsync("PUT", "/network-interfaces/eth0", body), StringComparison.Ordinal);
        Assert.Empty((await _api.GetAsync("/vm/config")).GetProperty("network-interfaces").EnumerateArray());
    }

    [Fact]
    public async Task NetworkInterfacesAcceptEveryBackendKindAndRefuseADuplicateMac()
    {
        await _api.NoContentAsync("PUT", "/network-interfaces/eth0", """{"iface_id": "eth0", "host_dev_name": "user:hostfwd=tcp:127.0.0.1:0-:80", "guest_mac": "52:54:00:00:00:01"}""");
        await _api.NoContentAsync("PUT", "/network-interfaces/eth1", """{"iface_id": "eth1", "host_dev_name": "switch:lan", "tx_rate_limiter": {"bandwidth": {"size": 100000, "refill_time": 100}}}""");
        await _api.NoContentAsync("PUT", "/network-interfaces/eth2", """{"iface_id": "eth2", "host_dev_name": "tap0"}""");
        Assert.Contains("already", await _api.FaultAsync("PUT", "/network-interfaces/eth3", """{"iface_id": "eth3", "host_dev_name": "user", "guest_mac": "52:54:00:00:00:01"}"""), StringComparison.Ordinal);
        var nics = (await _api.GetAsync("/vm/config")).GetProperty("network-interfaces").EnumerateArray().ToList();
        Assert.Equal(3, nics.Count);
    }

    [Fact]
    public async Task EveryVirtioSlotCanBeUsedButNoMore()
    {
        for (int i = 0; i < Machine.MachineConfiguration.MaxVirtioDevices; i++)
        {
            string disk = _api.File($"d{i}.img");
            await _api.NoContentAsync("PUT", $"/drives/d{i}", $$"""{"drive_id": "d{{i}}", "path_on_host": "{{disk}}", "is_root_device": false}""");
        }

        string last = _api.File("last.img");
        Assert.Contains("slots", await _api.FaultAsync("PUT", "/drives/last", $$"""{"drive_id": "last", "path_on_host": "{{last}}", "is_root_device": false}"""), StringComparison.Ordinal);
        Assert.Contains("slots", await _api.FaultAsync("PUT", "/entropy", "{}"), StringComparison.Ordinal);
        string d0 = Path.Combine(_api.Directory, "d0.img");
        await _api.NoContentAsync("PUT", "/drives/d0", $$"""{"drive_id": "d0", "path_on_host": "{{d0}}", "is_root_device": false, "is_read_only": true}""");
    }

    [Fact]
    public async Task BalloonRules()
    {
        Assert.Contains("No balloon", await _api.FaultAsync("GET", "/balloon"), StringComparison.Ordinal);
        Assert.Contains("amount_mib", await _api.FaultAsync("PUT", "/balloon", """{"amount_mib": 4096, "deflate_on_oom": true}"""), StringComparison.Ordinal);
        Assert.Contains("deflate_on_oom", await _api.FaultAsync("PUT", "/balloon", """{"amount_mib": 16}"""), StringComparison.Ordinal);
        Assert.Contains("hinting", await _api.FaultAsync("PUT", "/balloon", """{"amount_mib": 16, "deflate_on_oom": true, "free_page_hinting": true}"""), StringComparison.Ordinal);
        await _api.NoContentAsync("PUT", "/balloon", """{"amount_mib": 16, "deflate_on_oom": true}""");
        Assert.Contains("not enabled", await _api.FaultAsync("GET", "/balloon/statistics"), StringComparison.Ordinal);
        await _api.NoContentAsync("PATCH", "/balloon", """{"amount_mib": 32}""");
        await _api.NoContentAsync("PATCH", "/balloon/statistics", """{"stats_polling_interval_s": 5}""");
        var balloon = await _api.GetAsync("/balloon");
        Assert.Equal(32, balloon.GetProperty("amount_mib").GetInt32());
        Assert.Equal(5, balloon.GetProperty("stats_polling_interval_s").GetInt32());
        var stats = await _api.GetAsync("/balloon/statistics");
        Assert.Equal(32 * 256, stats.GetProperty("target_pages").GetInt32());
        Assert.Contains("exactly amount_mib", await _api.FaultAsync("PATCH", "/balloon", """{"amount_mib": 8, "deflate_on_oom": false}"""), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunningOnlyCallsAreRefusedBeforeStart()
    {
        Assert.Contains("not been started", await _api.FaultAsync("PATCH", "/vm", """{"state": "Paused"}"""), StringComparison.Ordinal);
        Assert.Contains("Paused or Resumed", await _api.FaultAsync("PATCH", "/vm", """{"state": "Stopped"}"""), StringComparison.Ordinal);
        Assert.Contains("boot source", await _api.FaultAsync("PUT", "/actions", """{"action_type": "InstanceStart"}"""), StringComparison.Ordinal);
        Assert.Contains("not running", await _api.FaultAsync("PUT", "/actions", """{"action_type": "SendCtrlAltDel"}"""), StringComparison.Ordinal);
        Assert.Contains("metrics", await _api.FaultAsync("PUT", "/actions", """{"action_type": "FlushMetrics"}"""), StringComparison.Ordinal);
        Assert.Contains("action_type", await _api.FaultAsync("PUT", "/actions", """{"action_type": "Reboot"}"""), StringComparison.Ordinal);
        Assert.Equal("Not started", (await _api.GetAsync("/")).GetProperty("state").GetString());
    }

    [Fact]
    public async Task MetricsAreWrittenOnFlushAndInitialisedOnce()
    {
        string path = Path.Combine(_api.Directory, "metrics.json");
        await _api.NoContentAsync("PUT", "/metrics", $$"""{"metrics_path": "{{path}}"}""");
        Assert.Contains("already", await _api.FaultAsync("PUT", "/metrics", $$"""{"metrics_path": "{{path}}"}"""), StringComparison.Ordinal);
        await _api.NoContentAsync("PUT", "/actions", """{"action_type": "FlushMetrics"}""");
        string line = File.ReadAllLines(path).Single();
        using var doc = System.Text.Json.JsonDocument.Parse(line);
        Assert.True(doc.RootElement.GetProperty("utc_timestamp_ms").GetInt64() > 0);
        Assert.Equal("NotStarted", doc.RootElement.GetProperty("state").GetString());
    }

    [Fact]
    public async Task LoggerWritesToItsFile()
    {
        string path = Path.Combine(_api.Directory, "vmm.log");
        await _api.NoContentAsync("PUT", "/logger", $$"""{"log_path": "{{path}}", "level": "Warning", "show_level": true}""");
        Assert.Contains("level", await _api.FaultAsync("PUT", "/logger", $$"""{"log_path": "{{path}}", "level": "Loud"}"""), StringComparison.Ordinal);
        _ = await _api.FaultAsync("PUT", "/machine-config", """{"vcpu_count": 99, "mem_size_mib": 64}""");
        Assert.Contains("vcpu_count 99", File.ReadAllText(path), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET", "/nothing-here", "Invalid request method and/or path")]
    [InlineData("DELETE", "/machine-config", "Invalid request method and/or path")]
    [InlineData("PUT", "/mmds", "MMDS")]
    [InlineData("PUT", "/snapshot/create", "Snapshots")]
    [InlineData("PUT", "/cpu-config", "x86")]
    [InlineData("PUT", "/vsock", "vsock")]
    public async Task UnknownAndUnsupportedPathsAreFaults(string method, string path, string mentions) =>
        Assert.Contains(mentions, await _api.FaultAsync(method, path, "{}"), StringComparison.Ordinal);

    [Fact]
    public async Task OversizedAndEmptyBodiesAreRefused()
    {
        string big = "{\"boot_args\": \"" + new string('a', VmmServer.MaxBodyBytes) + "\"}";
        Assert.Contains("limit", await _api.FaultAsync("PUT", "/boot-source", big), StringComparison.Ordinal);
        Assert.Contains("JSON body", await _api.FaultAsync("PUT", "/boot-source"), StringComparison.Ordinal);
        Assert.Contains("null", await _api.FaultAsync("PUT", "/boot-source", "null"), StringComparison.Ordinal);
        var (status, _) = await _api.SendAsync("GET", "/");
        Assert.Equal(HttpStatusCode.OK, status);
    }
}
