using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;

namespace HostVM.Integration.Tests;

/// <summary>
/// The daemon's statistics end to end, sampled every second: the CPU benchmark guest's MIPS against an
/// idle guest's, the history, host totals, a stopped VM's answer, and `hostvm top --once` / `vm stats`.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class StatsTests
{
    /// <summary>A guest running flat out retires tens to hundreds of millions of instructions a second here; idle, its harts sit in WFI.</summary>
    private const double BusyMips = 10;

    private const double IdleMips = 1;

    private static double Mips(JsonElement stats) => stats.GetProperty("rates").GetProperty("mips").GetDouble();

    [Fact]
    public async Task MipsIsHighWhileTheCpuBenchmarkRunsAndNearZeroWhenTheGuestIdles()
    {
        using var daemon = await DaemonUnderTest.StartAsync("--stats-interval", "1");
        await daemon.ImportGuestAsync();
        await ImportBenchAsync(daemon);
        var bench = await daemon.CreateVmAsync(new { name = "bench", image = "bench", memory_mib = 96, start = true, restart_policy = "never" });
        var idle = await daemon.CreateVmAsync(new { name = "idle", image = "guest", memory_mib = 96, start = true, restart_policy = "never" });
        await daemon.CreateVmAsync(new { name = "parked", image = "guest", memory_mib = 64 });

        // The benchmark runs for several seconds after it says it is ready; read it then.
        await daemon.WaitForSerialAsync(bench, "HOSTVM-GUEST-READY", 180);
        var busy = await daemon.GetAsync("/v1/vms/bench/stats");
        Assert.False(File.ReadAllText(daemon.SerialLog(bench)).Contains("HOSTVM-BENCH checksum", StringComparison.Ordinal),
            "the benchmark ended before it could be measured; the MIPS below would not be its own");
        Assert.True(Mips(busy) > BusyMips, $"the CPU benchmark's MIPS: {busy}");
        Assert.Equal("running", busy.GetProperty("state").GetString());
        Assert.True(busy.GetProperty("rates").GetProperty("vcpu_percent").GetDouble() > 10, busy.ToString());
        Assert.True(busy.GetProperty("host_rss_bytes").GetInt64() > 0);
        Assert.Equal(96L << 20, busy.GetProperty("guest_memory_bytes").GetInt64());

        // An idle shell: once the boot's last work is done, its MIPS is near zero (retried while the boot settles).
        await daemon.WaitForSerialAsync(idle, "HOSTVM-SHELL-READY", 180);
        var watch = Stopwatch.StartNew();
        JsonElement quiet;
        do
        {
            quiet = await daemon.GetAsync("/v1/vms/idle/stats");
        }
        while (Mips(quiet) >= IdleMips && watch.Elapsed < TimeSpan.FromSeconds(30));
        Assert.True(Mips(quiet) < IdleMips, $"the idle guest's MIPS: {quiet}");
        Assert.True(quiet.GetProperty("instructions_retired").GetUInt64() > 0, "it booted, so it did retire instructions");

        // The history grows a sample a second, oldest first, each with its rates; ?since= keeps the later ones.
        var history = (await daemon.GetAsync("/v1/vms/bench/stats/history")).EnumerateArray().ToList();
        Assert.True(history.Count >= 2, $"history: {history.Count} samples");
        var times = history.Select(s => s.GetProperty("counters").GetProperty("at").GetDateTimeOffset()).ToList();
        Assert.Equal(times.Order(), times);
        Assert.Contains(history, s => s.GetProperty("rates").ValueKind == JsonValueKind.Object && s.GetProperty("rates").GetProperty("mips").GetDouble() > BusyMips);
        string since = Uri.EscapeDataString(times[^1].ToString("O", CultureInfo.InvariantCulture));
        Assert.True((await daemon.GetAsync($"/v1/vms/bench/stats/history?since={since}")).GetArrayLength() >= 1);
        Assert.Equal(400, (await daemon.SendAsync(HttpMethod.Get, "/v1/vms/bench/stats/history?since=yesterday")).Status);

        // A VM with no VMM answers with its state and zeros.
        var parked = await daemon.GetAsync("/v1/vms/parked/stats");
        Assert.Equal("stopped", parked.GetProperty("state").GetString());
        Assert.Equal(0UL, parked.GetProperty("instructions_retired").GetUInt64());
        Assert.Equal(JsonValueKind.Null, parked.GetProperty("rates").ValueKind);
        Assert.Equal(404, (await daemon.SendAsync(HttpMethod.Get, "/v1/vms/nosuch/stats")).Status);

        // Host totals are the sums over the VM lines of the same answer.
        var host = await daemon.GetAsync("/v1/host/stats");
        var lines = host.GetProperty("vms").EnumerateArray().ToList();
        Assert.Equal(["bench", "idle", "parked"], lines.Select(l => l.GetProperty("name").GetString()).Order());
        var rated = lines.Where(l => l.GetProperty("rates").ValueKind == JsonValueKind.Object).ToList();
        var totals = host.GetProperty("totals");
        Assert.Equal(rated.Sum(Mips), totals.GetProperty("mips").GetDouble(), 6);
        Assert.Equal(lines.Sum(l => l.GetProperty("host_rss_bytes").GetInt64()), totals.GetProperty("host_rss_bytes").GetInt64());
        Assert.Equal(lines.Sum(l => l.GetProperty("disk_read_bytes").GetInt64()), totals.GetProperty("disk_read_bytes").GetInt64());
        var vms = (await daemon.GetAsync("/v1/vms")).EnumerateArray().ToList();
        var holding = vms.Where(v => v.GetProperty("state").GetString() is "running" or "paused" or "starting" or "stopping").ToList();
        Assert.Equal(holding.Sum(v => v.GetProperty("vcpus").GetInt32()), host.GetProperty("vcpus_allocated").GetInt32());
        Assert.Equal(holding.Sum(v => v.GetProperty("memory_mib").GetInt64()), host.GetProperty("memory_allocated_mib").GetInt64());
        Assert.Equal(3, host.GetProperty("vms_by_state").EnumerateObject().Sum(p => p.Value.GetInt32()));
        Assert.True(host.GetProperty("memory_total_bytes").GetInt64() > 0);

        // The command line shows the same: `top --once` has a row per VM, `vm stats` the VM's numbers.
        var env = new Dictionary<string, string>
        {
            ["HOSTVM_HOST"] = daemon.Client.BaseAddress!.ToString(),
            ["HOSTVM_FINGERPRINT"] = daemon.Fingerprint,
            ["HOSTVM_TOKEN"] = daemon.Token!,
            ["XDG_CONFIG_HOME"] = Path.Combine(daemon.Root, "config"),
        };
        var (code, top, err) = await RunAsync(env, "top", "--once");
        Assert.True(code == 0, err);
        Assert.Contains("MIPS", top);
        Assert.Matches(@"bench\s+running", top);
        Assert.Matches(@"parked\s+stopped", top);
        (code, var stats, err) = await RunAsync(env, "vm", "stats", "idle");
        Assert.True(code == 0, err);
        Assert.Contains("idle", stats);
        Assert.Matches(@"MIPS\s+\d", stats);
        (code, var historyTable, err) = await RunAsync(env, "vm", "stats", "bench", "--history");
        Assert.True(code == 0, err);
        Assert.Matches(@"\d\d:\d\d:\d\d", historyTable);
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(Dictionary<string, string> env, params string[] args)
    {
        using var p = HostvmProcess.Start(env, args);
        int code = await p.WaitForExitAsync(TimeSpan.FromMinutes(2));
        return (code, p.Output, p.Errors);
    }

    private static async Task ImportBenchAsync(DaemonUnderTest daemon)
    {
        string import = Path.Combine(daemon.DataDir, "import");
        File.Copy(GuestArtifacts.Guest("bench-initramfs.cpio.gz"), Path.Combine(import, "bench-initramfs.cpio.gz"));
        var response = await daemon.PostAsync("/v1/images", new { name = "bench", kernel = "Image", initrd = "bench-initramfs.cpio.gz", boot_args = "console=ttyS0 quiet" });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }
}
