using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Xunit;

namespace HostVM.Integration.Tests;

/// <summary>
/// Each VMM the daemon starts is sealed (issue 12, the jail): its own uid, no_new_privs, a seccomp allowlist, its own
/// mount, PID and network namespaces with a root that holds only its VM's files, and a cgroup with a CPU quota and a
/// memory limit. No guest OS is needed: the VMs boot the spin kernel, so their VMMs run and serve their APIs.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class JailTests
{
    private const string NeedsRoot = "jailing a VMM (namespaces, another uid, cgroups) needs a daemon that runs as root, as CI has";

    [Fact]
    public async Task AJailedVmmHasItsOwnUidNoNewPrivsSeccompAndARootWithOnlyItsOwnFiles()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, NeedsRoot);
        using var daemon = await DaemonUnderTest.StartAsync();
        var (a, b) = await TwoSpinningVmsAsync(daemon);
        int pid = a.GetProperty("pid").GetInt32();
        string status = await File.ReadAllTextAsync($"/proc/{pid}/status");
        int uid = int.Parse(Field(status, "Uid").Split('\t')[0], CultureInfo.InvariantCulture);
        Assert.NotEqual(0, uid);
        Assert.Equal(a.GetProperty("jail_id").GetInt32(), uid);
        Assert.Equal(uid.ToString(CultureInfo.InvariantCulture), Field(status, "Gid").Split('\t')[0]);
        Assert.Equal("1", Field(status, "NoNewPrivs"));
        Assert.Equal("2", Field(status, "Seccomp"));
        Assert.Equal("0000000000000000", Field(status, "CapEff"));
        Assert.Equal("0000000000000000", Field(status, "CapBnd"));
        int otherUid = b.GetProperty("jail_id").GetInt32();
        Assert.NotEqual(uid, otherUid);

        // The VMM seals itself after its runtime has started threads: every thread, not only the first, is the jail's.
        string[] threads = Directory.GetDirectories($"/proc/{pid}/task");
        Assert.True(threads.Length > 3, $"{threads.Length} threads");
        foreach (string thread in threads)
        {
            string t = await File.ReadAllTextAsync(Path.Combine(thread, "status"));
            string all = string.Join('\t', Enumerable.Repeat(uid.ToString(CultureInfo.InvariantCulture), 4));
            Assert.Equal(all, Field(t, "Uid"));
            Assert.Equal(all, Field(t, "Gid"));
            Assert.Equal("900000", Field(t, "Groups").Trim()); // jail_id_base: the one group all jails share
            Assert.Equal("0000000000000000", Field(t, "CapEff"));
            Assert.Equal("0000000000000000", Field(t, "CapPrm"));
            Assert.Equal("1", Field(t, "NoNewPrivs"));
            Assert.Equal("2", Field(t, "Seccomp"));
        }

        foreach (string ns in new[] { "mnt", "pid", "net", "ipc", "uts" })
        {
            Assert.NotEqual(new FileInfo($"/proc/self/ns/{ns}").LinkTarget, new FileInfo($"/proc/{pid}/ns/{ns}").LinkTarget);
        }

        // A network namespace with no interface but its own loopback: frames leave only through the switch's sockets.
        var interfaces = (await File.ReadAllLinesAsync($"/proc/{pid}/net/dev")).Skip(2).Select(l => l.Split(':')[0].Trim()).ToList();
        Assert.Equal(["lo"], interfaces);

        // Its root: the system's programs, its own program, devices, its /proc, its VM's files and its network's switch.
        string root = $"/proc/{pid}/root";
        string aDir = Path.Combine(daemon.DataDir, "vms", a.GetProperty("id").GetString()!);
        string bDir = Path.Combine(daemon.DataDir, "vms", b.GetProperty("id").GetString()!);
        Assert.Equal(["disks", "kernel", "out", "sock", "vmm.json"], Entries(Path.Combine(root, "vm")));
        Assert.Equal(["null", "random", "urandom", "zero"], Entries(Path.Combine(root, "dev")));
        Assert.Equal(["api.sock", "console.sock"], Entries(Path.Combine(root, "vm", "sock")));
        Assert.Equal(["lan"], Entries(root + Path.Combine(daemon.RuntimeDir, "switches")));
        Assert.False(Directory.Exists(root + daemon.DataDir), "the data directory is not in the jail");
        Assert.False(Directory.Exists(root + Path.Combine(daemon.RuntimeDir, "vms")), "no VM's sockets are in the jail at the host's path");
        Assert.False(File.Exists(root + Path.Combine(bDir, "disks", "disk.qcow2")), "the other VM's disk is not in the jail");
        Assert.False(File.Exists(Path.Combine(root, "etc", "passwd")), "the host's /etc is not in the jail");
        Assert.Equal(["1"], Directory.GetDirectories(Path.Combine(root, "proc")).Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)).ToList());

        // What it may change: its disk, output and sockets; /usr, its program and its boot files are read-only to it.
        var mounts = (await File.ReadAllLinesAsync($"/proc/{pid}/mountinfo")).Select(l => l.Split(' ')).ToDictionary(f => f[4], f => f[5].Split(','));
        foreach (string readOnly in new[] { "/usr", "/vm/kernel", "/vm/vmm.json", "/proc" })
        {
            Assert.Contains("ro", mounts[readOnly]);
        }

        foreach (string writable in new[] { "/vm/disks", "/vm/out", "/vm/sock" })
        {
            Assert.Contains("rw", mounts[writable]);
            Assert.Contains("noexec", mounts[writable]);
        }

        // Its files on the host: the disk and output are its uid's, the VM's directory stays the daemon's.
        Assert.Equal(uid, Owner(Path.Combine(aDir, "disks", "disk.qcow2")));
        Assert.Equal(uid, Owner(Path.Combine(aDir, "out")));
        Assert.Equal(0, Owner(aDir));

        // The disk's directory is bound read-write (a live block job's files reach the VMM), but only the daemon names
        // files in it, and the base and layers there are root's and read-only to the jails.
        Assert.Equal(0, Owner(Path.Combine(aDir, "disks")));
        Assert.Equal(UnixFileMode.None, File.GetUnixFileMode(Path.Combine(aDir, "disks")) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite | UnixFileMode.OtherRead));
        Assert.Equal(0, Owner(Path.Combine(aDir, "disks", "base.img")));
        Assert.Equal(UnixFileMode.None, File.GetUnixFileMode(Path.Combine(aDir, "disks", "base.img")) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite | UnixFileMode.OtherRead));

        // Asked through its API for a drive outside its jail (the other VM's disk, a host file), the VMM cannot open it.
        using var api = VmmProcessTests.UnixHttp(Path.Combine(daemon.RuntimeDir, "vms", a.GetProperty("id").GetString()!, "api.sock"));
        foreach (string outside in new[] { Path.Combine(bDir, "disks", "disk.qcow2"), "/etc/passwd" })
        {
            Assert.True(File.Exists(outside), outside);
            using var response = await api.PutAsJsonAsync("/drives/stolen", new Dictionary<string, object> { ["drive_id"] = "stolen", ["path_on_host"] = outside, ["is_root_device"] = false, ["is_read_only"] = true });
            string body = await response.Content.ReadAsStringAsync();
            Assert.Equal(400, (int)response.StatusCode);
            Assert.Contains("no such file", body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ASystemCallOutsideTheAllowlistKillsOnlyThatVmmAndTheDaemonSaysSo()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, NeedsRoot);
        using var daemon = await DaemonUnderTest.StartAsync();
        var (a, b) = await TwoSpinningVmsAsync(daemon);
        int aPid = a.GetProperty("pid").GetInt32();
        using (var api = VmmProcessTests.UnixHttp(Path.Combine(daemon.RuntimeDir, "vms", a.GetProperty("id").GetString()!, "api.sock")))
        {
            // The VMM makes personality(2), which its filter does not allow: it never answers.
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => api.PutAsJsonAsync("/actions", new Dictionary<string, string> { ["action_type"] = "SeccompSelfTest" }));
        }

        JsonElement after = default;
        for (int i = 0; i < 200 && (after.ValueKind == JsonValueKind.Undefined || after.GetProperty("state").GetString() == "running"); i++)
        {
            await Task.Delay(50);
            after = await daemon.GetAsync("/v1/vms/jail-a");
        }

        Assert.Equal("failed", after.GetProperty("state").GetString());
        var exit = after.GetProperty("last_exit");
        Assert.Equal(128 + 31, exit.GetProperty("exit_code").GetInt32());
        Assert.Contains("seccomp", exit.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.False(DaemonUnderTest.Alive(aPid), "the killed VMM is gone");

        // The other VM runs on, and its VMM answers.
        var other = await daemon.GetAsync("/v1/vms/jail-b");
        Assert.Equal("running", other.GetProperty("state").GetString());
        Assert.Equal(b.GetProperty("pid").GetInt32(), other.GetProperty("pid").GetInt32());
        using var bApi = VmmProcessTests.UnixHttp(Path.Combine(daemon.RuntimeDir, "vms", b.GetProperty("id").GetString()!, "api.sock"));
        Assert.Contains("Running", await bApi.GetStringAsync("/"), StringComparison.Ordinal);
        var (status, _) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/jail-b/stop", new { force = true });
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task EachVmmRunsInACgroupOfItsOwnWithItsCpuQuotaAndMemoryLimit()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, NeedsRoot);
        bool v2 = File.Exists("/sys/fs/cgroup/cgroup.controllers");
        Assert.SkipUnless(v2 || File.Exists("/sys/fs/cgroup/cpu/cgroup.procs") && File.Exists("/sys/fs/cgroup/memory/cgroup.procs"),
            "this host has neither cgroup v2 nor v1's cpu and memory controllers at /sys/fs/cgroup");
        using var daemon = await DaemonUnderTest.StartAsync();
        await ImportSpinAsync(daemon);
        var vm = await daemon.CreateVmAsync(new { name = "capped", image = "spin", vcpus = 2, memory_mib = 64, cpu_cap_percent = 30, cpu_weight = 200, restart_policy = "never" });
        var (code, started) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/capped/start");
        Assert.True(code == 200, started.ToString());
        string id = vm.GetProperty("id").GetString()!;
        string pid = started.GetProperty("pid").GetInt32().ToString(CultureInfo.InvariantCulture);
        // Where the kernel says the VMM is (v2: "0::/PATH"; v1: "N:cpu:/PATH" and "N:memory:/PATH"): a group of its VM's own.
        string[] lines = await File.ReadAllLinesAsync($"/proc/{pid}/cgroup");
        string GroupOf(string controller) => lines.Select(l => l.Split(':', 3)).First(f => v2 ? f[0] == "0" : f[1].Split(',').Contains(controller))[2];
        string cpu = v2 ? $"/sys/fs/cgroup{GroupOf("")}" : $"/sys/fs/cgroup/cpu{GroupOf("cpu")}";
        string memory = v2 ? cpu : $"/sys/fs/cgroup/memory{GroupOf("memory")}";
        Assert.EndsWith("-" + id, cpu, StringComparison.Ordinal);
        Assert.EndsWith("-" + id, memory, StringComparison.Ordinal);
        Assert.Contains(pid, await File.ReadAllLinesAsync(Path.Combine(cpu, "cgroup.procs")));
        Assert.Contains(pid, await File.ReadAllLinesAsync(Path.Combine(memory, "cgroup.procs")));

        // Two vCPUs at 30% and a quarter core for the VMM's own threads; the guest's 64 MiB and 256 MiB for the VMM.
        Assert.Equal(2 * 30_000 + 25_000, Quota(cpu, v2));
        Assert.Equal((64L + 256) << 20, long.Parse((await File.ReadAllTextAsync(Path.Combine(memory, v2 ? "memory.max" : "memory.limit_in_bytes"))).Trim(), CultureInfo.InvariantCulture));

        // Its weight against the host's other groups and processes: cpu_weight 200 is twice a process's.
        Assert.Equal(v2 ? 200 : 2048, long.Parse((await File.ReadAllTextAsync(Path.Combine(cpu, v2 ? "cpu.weight" : "cpu.shares"))).Trim(), CultureInfo.InvariantCulture));

        // A new cap reaches the kernel's quota at once.
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Patch, "/v1/vms/capped", new { cpu_cap_percent = 10 })).Status);
        Assert.Equal(2 * 10_000 + 25_000, Quota(cpu, v2));

        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/capped/stop", new { force = true })).Status);
        for (int i = 0; i < 100 && Directory.Exists(cpu); i++)
        {
            await Task.Delay(50);
        }

        Assert.False(Directory.Exists(cpu), "a stopped VM's cgroup is removed");
    }

    private static long Quota(string group, bool v2) =>
        long.Parse(File.ReadAllText(Path.Combine(group, v2 ? "cpu.max" : "cpu.cfs_quota_us")).Split(' ')[0].Trim(), CultureInfo.InvariantCulture);

    private static async Task ImportSpinAsync(DaemonUnderTest daemon)
    {
        string import = Path.Combine(daemon.DataDir, "import");
        await File.WriteAllBytesAsync(Path.Combine(import, "spin"), SpinKernel.Image);
        await File.WriteAllBytesAsync(Path.Combine(import, "disk"), new byte[1 << 20]);
        var (status, body) = await daemon.SendAsync(HttpMethod.Post, "/v1/images", new { name = "spin", kernel = "spin", disk = "disk" });
        Assert.True(status == 201, body.ToString());
    }

    /// <summary>Two VMs on one NAT network, each with a disk, running the spin kernel; they are not restarted if they die.</summary>
    private static async Task<(JsonElement A, JsonElement B)> TwoSpinningVmsAsync(DaemonUnderTest daemon)
    {
        await ImportSpinAsync(daemon);
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/networks", new { name = "lan", nat = true })).Status);
        var started = new List<JsonElement>();
        foreach (string name in new[] { "jail-a", "jail-b" })
        {
            await daemon.CreateVmAsync(new { name, image = "spin", memory_mib = 64, restart_policy = "never", networks = new[] { new { network = "lan" } } });
            var (status, vm) = await daemon.SendAsync(HttpMethod.Post, $"/v1/vms/{name}/start");
            Assert.True(status == 200, vm.ToString());
            started.Add(vm);
        }

        return (started[0], started[1]);
    }

    private static string Field(string status, string name) =>
        status.Split('\n').First(l => l.StartsWith(name + ":", StringComparison.Ordinal))[(name.Length + 1)..].Trim();

    private static List<string> Entries(string directory) =>
        [.. Directory.GetFileSystemEntries(directory).Select(e => Path.GetFileName(e)!).Order(StringComparer.Ordinal)];

    private static int Owner(string path)
    {
        var info = new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true };
        using var stat = System.Diagnostics.Process.Start(info)!;
        string text = stat.StandardOutput.ReadToEnd();
        stat.WaitForExit();
        return int.Parse(text.Trim(), CultureInfo.InvariantCulture);
    }
}
