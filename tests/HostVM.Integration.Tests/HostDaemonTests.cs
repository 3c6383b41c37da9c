using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace HostVM.Integration.Tests;

/// <summary>`hostvm serve` end to end on loopback: real VMM processes booting the test guest.</summary>
[Collection(GuestCollection.Name)]
public sealed class HostDaemonTests
{
    private static string Name(JsonElement vm) => vm.GetProperty("name").GetString()!;

    private static int Pid(JsonElement vm) => vm.GetProperty("pid").GetInt32();

    [Fact]
    public async Task AVmsMacOnANetworkIsNeitherMulticastNorTheNatGateways()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await File.WriteAllBytesAsync(Path.Combine(daemon.DataDir, "import", "spin"), SpinKernel.Image);
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/images", new { name = "spin", kernel = "spin" })).Status);
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/networks", new { name = "lan", nat = true })).Status);
        foreach (var (mac, why) in new[] { ("01:00:5e:00:00:01", "multicast"), ("52:55:0a:00:02:02", "gateway") })
        {
            var (status, body) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = "spoof", image = "spin", networks = new[] { new { network = "lan", mac } } });
            Assert.Equal(400, status);
            Assert.Contains(why, body.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = "fine", image = "spin", networks = new[] { new { network = "lan", mac = "52:54:00:00:00:42" } } })).Status);
    }

    [Fact]
    public async Task LifecycleCreateStartPauseResumeConsoleStopDelete()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        var vm = await daemon.CreateVmAsync(new { name = "life", image = "guest", vcpus = 1, memory_mib = 128 });
        Assert.Equal("stopped", vm.GetProperty("state").GetString());
        string vmDir = Path.Combine(daemon.DataDir, "vms", vm.GetProperty("id").GetString()!);
        Assert.True(File.Exists(Path.Combine(vmDir, "disks", "disk.qcow2")), "the VM's disk is an overlay in its storage");
        Assert.Equal(new FileInfo(Path.Combine(daemon.DataDir, "images", "guest", "disk.img")).Length, new FileInfo(Path.Combine(vmDir, "disks", "base.img")).Length);
        Assert.Equal("qcow2", vm.GetProperty("disk_format").GetString());

        var (status, started) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/life/start");
        Assert.True(status == 200, started.ToString());
        Assert.Equal("running", started.GetProperty("state").GetString());
        await daemon.WaitForSerialAsync(vm, "HOSTVM-GUEST-READY");
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
        using (var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm)))
        {
            Assert.Equal(0, (await console.RunAsync("{ while :; do :; done & }")).Status); // busy, so the instruction count moves while it runs
        }

        (status, var paused) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/life/pause");
        Assert.True(status == 200, paused.ToString());
        Assert.Equal("paused", paused.GetProperty("state").GetString());
        await Task.Delay(300);
        ulong before = await daemon.InstructionsAsync("life");
        await Task.Delay(1000);
        Assert.Equal(before, await daemon.InstructionsAsync("life"));
        Assert.Equal(409, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/life/pause")).Status);

        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/life/resume")).Status);
        await Task.Delay(1000);
        Assert.True(await daemon.InstructionsAsync("life") > before, "the guest runs again after resume");

        // The console over the daemon's WebSocket: a command typed there runs in the guest.
        using (var ws = daemon.NewWebSocket())
        {
            await ws.ConnectAsync(daemon.WebSocketUri("v1/vms/life/console"), CancellationToken.None);
            await ws.SendAsync(Encoding.ASCII.GetBytes("echo THE-ANSWER-$((6*7))\n"), WebSocketMessageType.Binary, true, CancellationToken.None);
            var seen = new StringBuilder();
            var buffer = new byte[4096];
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (!seen.ToString().Contains("THE-ANSWER-42", StringComparison.Ordinal))
            {
                var r = await ws.ReceiveAsync(buffer, timeout.Token);
                seen.Append(Encoding.ASCII.GetString(buffer, 0, r.Count));
            }

            await ws.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
        }

        Assert.Equal("running", (await daemon.GetAsync("/v1/vms/life")).GetProperty("state").GetString());
        Assert.Equal(409, (await daemon.SendAsync(HttpMethod.Delete, "/v1/vms/life")).Status);

        // A console attached while the VM stops is closed by the daemon, not left hanging.
        using var watcher = daemon.NewWebSocket();
        await watcher.ConnectAsync(daemon.WebSocketUri("v1/vms/life/console"), CancellationToken.None);
        (status, var stopped) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/life/stop", new { timeout_s = 20 });
        using (var closeWait = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            var scratch = new byte[4096];
            while ((await watcher.ReceiveAsync(scratch, closeWait.Token)).MessageType != WebSocketMessageType.Close)
            {
            }
        }

        Assert.True(status == 200, stopped.ToString());
        Assert.Equal("stopped", stopped.GetProperty("state").GetString());
        Assert.Equal("poweroff", stopped.GetProperty("last_exit").GetProperty("reason").GetString()); // the guest heard the power button
        Assert.Contains("HOSTVM-POWER-BUTTON", daemon.SerialText(vm), StringComparison.Ordinal);
        Assert.False(DaemonUnderTest.Alive(Pid(started)), "the VMM is gone after stop");

        Assert.Equal(204, (await daemon.SendAsync(HttpMethod.Delete, "/v1/vms/life")).Status);
        Assert.Equal(404, (await daemon.SendAsync(HttpMethod.Get, "/v1/vms/life")).Status);
        var kept = Directory.GetDirectories(Path.Combine(daemon.DataDir, "orphans"));
        Assert.Single(kept); // deleted without purge: the disk is kept
        var types = (await daemon.GetAsync("/v1/events?vm=life")).EnumerateArray().Select(e => e.GetProperty("type").GetString()).ToList();
        foreach (var t in new[] { "created", "starting", "started", "paused", "resumed", "stopping", "stopped", "deleted" })
        {
            Assert.Contains(t, types);
        }
    }

    [Fact]
    public async Task KillingOneOfThreeVmmsLeavesTheOthersAndItIsRestarted()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        var vms = new List<JsonElement>();
        foreach (var name in new[] { "one", "two", "three" })
        {
            vms.Add(await daemon.CreateVmAsync(new { name, image = "guest", memory_mib = 96, start = true, restart_policy = "on-failure" }));
        }

        foreach (var vm in vms)
        {
            await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY", 180);
        }

        int victim = Pid(vms[1]);
        DaemonUnderTest.ProcessKill(victim, 9);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        JsonElement events;
        while (true)
        {
            events = await daemon.GetAsync("/v1/events?vm=two");
            if (events.EnumerateArray().Any(e => e.GetProperty("type").GetString() == "crashed"))
            {
                break;
            }

            Assert.True(watch.Elapsed.TotalSeconds < 5, "the daemon did not notice the dead VMM");
            await Task.Delay(50);
        }

        Assert.True(watch.Elapsed.TotalSeconds < 1.5, $"noticed after {watch.Elapsed.TotalMilliseconds:F0} ms");
        var two = await WaitForStateAsync(daemon, "two", "running", 60);
        Assert.NotEqual(victim, Pid(two));
        Assert.Equal(1, two.GetProperty("restarts").GetInt32());
        Assert.Equal("crashed", two.GetProperty("last_exit").GetProperty("reason").GetString());
        foreach (var other in new[] { vms[0], vms[2] })
        {
            Assert.True(DaemonUnderTest.Alive(Pid(other)), $"{Name(other)}'s VMM must live on");
            var now = await daemon.GetAsync($"/v1/vms/{Name(other)}");
            Assert.Equal(Pid(other), Pid(now));
            using var console = ConsoleConnection.Open(daemon.ConsoleSocket(other));
            Assert.Contains("still-here", (await console.RunAsync("echo still-here")).Output, StringComparison.Ordinal);
        }

        await daemon.WaitForSerialAsync(two, "HOSTVM-GUEST-READY");

        // Policy "never": a killed VMM stays down, marked failed.
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Patch, "/v1/vms/three", new { restart_policy = "never" })).Status);
        DaemonUnderTest.ProcessKill(Pid(vms[2]), 9);
        var three = await WaitForStateAsync(daemon, "three", "failed", 10);
        Assert.Equal(JsonValueKind.Null, three.GetProperty("pid").ValueKind);
    }

    [Fact]
    public async Task ADaemonKilledAndRestartedAdoptsItsRunningVms()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/networks", new { name = "lan" })).Status);
        var a = await daemon.CreateVmAsync(new { name = "keep-a", image = "guest", memory_mib = 96, start = true, networks = new[] { new { network = "lan" } } });
        var b = await daemon.CreateVmAsync(new { name = "keep-b", image = "guest", memory_mib = 96, start = true });
        await daemon.WaitForSerialAsync(a, "HOSTVM-SHELL-READY");
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/keep-b/pause")).Status);

        await daemon.KillAndRestartAsync();

        Assert.True(DaemonUnderTest.Alive(Pid(a)) && DaemonUnderTest.Alive(Pid(b)), "the VMMs outlive the daemon");
        var adoptedA = await daemon.GetAsync("/v1/vms/keep-a");
        var adoptedB = await daemon.GetAsync("/v1/vms/keep-b");
        Assert.Equal(("running", Pid(a)), (adoptedA.GetProperty("state").GetString(), Pid(adoptedA)));
        Assert.Equal(("paused", Pid(b)), (adoptedB.GetProperty("state").GetString(), Pid(adoptedB)));
        Assert.Equal("guest", Assert.Single((await daemon.GetAsync("/v1/images")).EnumerateArray()).GetProperty("name").GetString());
        Assert.Equal(["keep-a"], (await daemon.GetAsync("/v1/networks/lan")).GetProperty("vms").EnumerateArray().Select(v => v.GetString()));
        Assert.Contains((await daemon.GetAsync("/v1/events?vm=keep-a")).EnumerateArray(), e => e.GetProperty("type").GetString() == "adopted");

        // The adopted VMs are fully managed: still supervised, still controllable.
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/keep-b/resume")).Status);
        using (var console = ConsoleConnection.Open(daemon.ConsoleSocket(a)))
        {
            var (status, output) = await console.RunAsync("echo adopted-$((1+1))");
            Assert.Equal(0, status);
            Assert.Contains("adopted-2", output, StringComparison.Ordinal);
        }

        DaemonUnderTest.ProcessKill(Pid(a), 9);
        var restarted = await WaitForStateAsync(daemon, "keep-a", "running", 60, differentPid: Pid(a));
        Assert.Equal(1, restarted.GetProperty("restarts").GetInt32());
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/keep-b/stop", new { force = true })).Status);
    }

    [Fact]
    public async Task AdmissionControlRefusesAVmThatDoesNotFitAndNothingIsHalfMade()
    {
        using var daemon = await DaemonUnderTest.StartAsync("--memory-overcommit", "0.1");
        await daemon.ImportGuestAsync();
        long capacity = (await daemon.GetAsync("/v1/host")).GetProperty("capacity").GetProperty("memory_mib").GetInt64();
        long big = Math.Min(capacity - 64, 65536);
        Assert.True(big > 200, $"capacity {capacity} MiB");
        await daemon.CreateVmAsync(new { name = "big", image = "guest", memory_mib = big, start = true });
        await daemon.CreateVmAsync(new { name = "small", image = "guest", memory_mib = 128 });

        var (status, problem) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/small/start");
        Assert.Equal(409, status);
        Assert.Equal("https://hostvm.dev/problems/does-not-fit", problem.GetProperty("type").GetString());
        Assert.Contains("memory", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.True(problem.GetProperty("errors").TryGetProperty("memory_mib", out _));
        Assert.Equal("stopped", (await daemon.GetAsync("/v1/vms/small")).GetProperty("state").GetString());

        (status, _) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = "started-too", image = "guest", memory_mib = 128, start = true });
        Assert.Equal(409, status);
        Assert.Equal(404, (await daemon.SendAsync(HttpMethod.Get, "/v1/vms/started-too")).Status);
        Assert.False(Directory.EnumerateDirectories(Path.Combine(daemon.DataDir, "vms")).Count() > 2, "no disk left behind by the refused VM");

        (status, problem) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms", new { name = "huge", image = "guest", vcpus = 8, memory_mib = 65536 });
        Assert.Equal(409, status);
        Assert.True(problem.GetProperty("errors").TryGetProperty("memory_mib", out _));

        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/big/stop", new { force = true })).Status);
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/small/start")).Status);
    }

    [Fact]
    public async Task BadRequestsAreRefusedAndLeaveTheInventoryUnchanged()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        string import = Path.Combine(daemon.DataDir, "import");
        File.CreateSymbolicLink(Path.Combine(import, "escape"), "/etc/passwd");
        Directory.CreateDirectory(Path.Combine(import, "sub"));
        File.CreateSymbolicLink(Path.Combine(import, "sub", "up"), daemon.DataDir);
        string before = await Inventory(daemon);

        var refused = new (object? Body, string? Raw, string Path, int Status, string Mentions)[]
        {
            (new { name = "x", kernel = "../hostvm.db" }, null, "/v1/images", 400, "outside"),
            (new { name = "x", kernel = "/etc/passwd" }, null, "/v1/images", 400, "outside"),
            (new { name = "x", kernel = "escape" }, null, "/v1/images", 400, "symlink"),
            (new { name = "x", kernel = "sub/up/hostvm.db" }, null, "/v1/images", 400, "symlink"),
            (new { name = "x", kernel = "missing" }, null, "/v1/images", 400, "no such file"),
            (new { name = "Bad Name", kernel = "Image" }, null, "/v1/images", 400, "lower-case"),
            (new { name = "guest", kernel = "Image" }, null, "/v1/images", 409, "exists"),
            (null, "{\"name\": \"x\", ", "/v1/vms", 400, "not valid JSON"),
            (null, "{\"name\": \"x\", \"image\": \"guest\", \"cpus\": 2}", "/v1/vms", 400, "Unknown field 'cpus'"),
            (null, "{\"name\": \"x\", \"image\": \"guest\", \"vcpus\": \"two\"}", "/v1/vms", 400, "vcpus"),
            (new { name = "x", image = "nope" }, null, "/v1/vms", 400, "no such image"),
            (new { name = "x", image = "guest", vcpus = 99 }, null, "/v1/vms", 400, "vcpus"),
            (new { name = "x", image = "guest", networks = new[] { new { network = "nowhere" } } }, null, "/v1/vms", 400, "no such network"),
            (new { name = "x", image = "guest", restart_policy = "sometimes" }, null, "/v1/vms", 400, "restart_policy"),
            (new { name = "x", image = "guest", cpu_cap_percent = 0 }, null, "/v1/vms", 400, "cpu_cap_percent"),
            (new { name = "x", image = "guest", disk_mib = 1 }, null, "/v1/vms", 400, "disk_mib"),
            (null, "{\"name\": \"" + new string('a', 70_000) + "\"}", "/v1/vms", 413, "limit"),
            (new { name = "../x" }, null, "/v1/networks", 400, "lower-case"),
        };
        foreach (var (body, raw, path, expected, mentions) in refused)
        {
            var (status, problem) = await daemon.SendAsync(HttpMethod.Post, path, body, raw);
            Assert.True(status == expected, $"{path} {raw ?? JsonSerializer.Serialize(body)[..Math.Min(80, JsonSerializer.Serialize(body).Length)]}: {status} {problem}");
            Assert.Contains(mentions, problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(404, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/nope/start")).Status);
        Assert.Equal(404, (await daemon.SendAsync(HttpMethod.Get, "/v1/nothing")).Status);
        Assert.Equal(before, await Inventory(daemon));
        Assert.Empty(Directory.GetDirectories(Path.Combine(daemon.DataDir, "images"), ".staging-*"));

        // Two starts at once: one wins, the other is told there is a conflict.
        await daemon.CreateVmAsync(new { name = "race", image = "guest", memory_mib = 64 });
        var starts = await Task.WhenAll(daemon.SendAsync(HttpMethod.Post, "/v1/vms/race/start"), daemon.SendAsync(HttpMethod.Post, "/v1/vms/race/start"));
        Assert.Equal([200, 409], starts.Select(s => s.Status).Order());
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/race/stop", new { force = true })).Status);
    }

    [Fact]
    public async Task VmsOnOneNetworkReachEachOtherAndNotAcrossNetworks()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/networks", new { name = "red" })).Status);
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/networks", new { name = "blue" })).Status);
        var vms = new[] { ("red1", "red", "10.9.0.1"), ("red2", "red", "10.9.0.2"), ("blue1", "blue", "10.9.0.3") };
        var created = new List<JsonElement>();
        foreach (var (name, network, _) in vms)
        {
            created.Add(await daemon.CreateVmAsync(new { name, image = "guest", memory_mib = 96, start = true, networks = new[] { new { network } } }));
        }

        var consoles = new List<ConsoleConnection>();
        try
        {
            for (int i = 0; i < vms.Length; i++)
            {
                await daemon.WaitForSerialAsync(created[i], "HOSTVM-SHELL-READY", 180);
                var console = ConsoleConnection.Open(daemon.ConsoleSocket(created[i]));
                consoles.Add(console);
                var (status, output) = await console.RunAsync($"ip addr add {vms[i].Item3}/24 dev eth0 && ip link set eth0 up");
                Assert.True(status == 0, output);
            }

            var (sameStatus, same) = await consoles[0].RunAsync("ping -c 3 -W 3 10.9.0.2");
            Assert.True(sameStatus == 0, $"red1 → red2 must work:\n{same}");
            var (backStatus, back) = await consoles[1].RunAsync("ping -c 2 -W 3 10.9.0.1");
            Assert.True(backStatus == 0, back);
            var (acrossStatus, across) = await consoles[0].RunAsync("ping -c 3 -W 2 10.9.0.3");
            Assert.True(acrossStatus != 0, $"red1 → blue1 must not work:\n{across}");
            var (fromBlueStatus, fromBlue) = await consoles[2].RunAsync("ping -c 2 -W 2 10.9.0.2");
            Assert.True(fromBlueStatus != 0, fromBlue);
        }
        finally
        {
            foreach (var c in consoles)
            {
                c.Dispose();
            }
        }

        Assert.Equal(409, (await daemon.SendAsync(HttpMethod.Delete, "/v1/networks/red")).Status);
        Assert.Equal(["red1", "red2"], (await daemon.GetAsync("/v1/networks/red")).GetProperty("vms").EnumerateArray().Select(v => v.GetString()));
    }

    [Fact]
    public async Task AVmCappedAt25PercentUsesAQuarterOfACoreWhileBusyAndTheCapCanChange()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        var vm = await daemon.CreateVmAsync(new { name = "capped", image = "guest", memory_mib = 96, cpu_cap_percent = 25, start = true });
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY", 180);
        using (var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm)))
        {
            Assert.Equal(0, (await console.RunAsync("{ while :; do :; done & }")).Status);
        }

        double share = await CpuShareAsync(Pid(vm), TimeSpan.FromSeconds(4));
        Assert.InRange(share, 0.20, 0.30);

        var (status, updated) = await daemon.SendAsync(HttpMethod.Patch, "/v1/vms/capped", new { cpu_cap_percent = 50 });
        Assert.True(status == 200, updated.ToString());
        Assert.Equal(50, updated.GetProperty("cpu_cap_percent").GetInt32());
        share = await CpuShareAsync(Pid(vm), TimeSpan.FromSeconds(4));
        Assert.InRange(share, 0.40, 0.60);
    }

    /// <summary>The share of one host core the process used over <paramref name="span"/> (utime + stime from /proc).</summary>
    private static async Task<double> CpuShareAsync(int pid, TimeSpan span)
    {
        static long Ticks(int pid)
        {
            var fields = File.ReadAllText($"/proc/{pid}/stat").Split(") ")[1].Split(' ');
            return long.Parse(fields[11], System.Globalization.CultureInfo.InvariantCulture) + long.Parse(fields[12], System.Globalization.CultureInfo.InvariantCulture);
        }

        await Task.Delay(500); // the cap's window settles
        long before = Ticks(pid);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        await Task.Delay(span);
        long after = Ticks(pid);
        return (after - before) / 100.0 / watch.Elapsed.TotalSeconds; // USER_HZ is 100 on Linux
    }

    [Fact]
    public async Task MetricsAreValidPrometheusTextAndTheCountersMoveWhileAGuestWorks()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        var vm = await daemon.CreateVmAsync(new { name = "measured", image = "guest", memory_mib = 96, start = true });
        await daemon.CreateVmAsync(new { name = "idle-stopped", image = "guest", memory_mib = 64 });
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
        using var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm));

        var first = await ScrapeAsync(daemon);
        Assert.Equal(1, first["hostvm_vm_state{vm=\"measured\",state=\"running\"}"]);
        Assert.Equal(1, first["hostvm_vm_state{vm=\"idle-stopped\",state=\"stopped\"}"]);
        Assert.Equal(1, first["hostvm_host_vms{state=\"running\"}"]);
        Assert.False(first.ContainsKey("hostvm_vm_instructions_retired_total{vm=\"idle-stopped\"}"));

        var (status, _) = await console.RunAsync("dd if=/dev/vda of=/dev/null bs=64k count=256 iflag=direct 2>/dev/null; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done");
        Assert.Equal(0, status);
        var second = await ScrapeAsync(daemon);
        string m = "{vm=\"measured\"}";
        Assert.True(second["hostvm_vm_instructions_retired_total" + m] > first["hostvm_vm_instructions_retired_total" + m]);
        Assert.True(second["hostvm_vm_vcpu_seconds_total" + m] > first["hostvm_vm_vcpu_seconds_total" + m]);
        string disk = "{vm=\"measured\",drive=\"disk\"}";
        Assert.True(second["hostvm_vm_disk_read_bytes_total" + disk] >= first["hostvm_vm_disk_read_bytes_total" + disk] + (16 << 20));
        Assert.True(second["hostvm_vm_rss_bytes" + m] > 0);
    }

    /// <summary>Scrapes /metrics, checking every line is Prometheus text format; returns the samples by name and labels.</summary>
    private static async Task<Dictionary<string, double>> ScrapeAsync(DaemonUnderTest daemon)
    {
        var response = await daemon.Client.GetAsync("/metrics");
        Assert.Equal("text/plain", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("0.0.4", response.Content.Headers.ContentType.Parameters.Single(p => p.Name == "version").Value);
        var samples = new Dictionary<string, double>();
        var declared = new HashSet<string>();
        var sample = new System.Text.RegularExpressions.Regex("^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"(\\\\.|[^\"\\\\])*\"(,[a-zA-Z_][a-zA-Z0-9_]*=\"(\\\\.|[^\"\\\\])*\")*)?\\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$");
        foreach (var line in (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                var parts = line.Split(' ');
                Assert.Contains(parts[3], new[] { "counter", "gauge" });
                Assert.True(declared.Add(parts[2]), $"{parts[2]} declared twice");
                continue;
            }

            if (line.StartsWith('#'))
            {
                Assert.StartsWith("# HELP ", line, StringComparison.Ordinal);
                continue;
            }

            var match = sample.Match(line);
            Assert.True(match.Success, $"not a Prometheus sample line: {line}");
            Assert.Contains(match.Groups[1].Value, declared);
            string key = line[..line.LastIndexOf(' ')];
            Assert.True(samples.TryAdd(key, double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture)), $"{key} twice");
        }

        return samples;
    }

    private static async Task<string> Inventory(DaemonUnderTest daemon) =>
        (await daemon.GetAsync("/v1/images")).ToString() + (await daemon.GetAsync("/v1/vms")).ToString() + (await daemon.GetAsync("/v1/networks")).ToString();

    private static async Task<JsonElement> WaitForStateAsync(DaemonUnderTest daemon, string vm, string state, double seconds, int differentPid = 0)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var now = await daemon.GetAsync($"/v1/vms/{vm}");
            if (now.GetProperty("state").GetString() == state && (differentPid == 0 || now.GetProperty("pid").ValueKind != JsonValueKind.Number || Pid(now) != differentPid))
            {
                return now;
            }

            if (watch.Elapsed.TotalSeconds > seconds)
            {
                throw new TimeoutException($"{vm} is not {state} after {seconds} s: {now}\nevents: {await daemon.GetAsync($"/v1/events?vm={vm}")}");
            }

            await Task.Delay(100);
        }
    }
}
