using System.Net;
using HostVM.Host.Metrics;

namespace HostVM.Cli.Tests;

/// <summary>`vm stats`, `vm stats --history`, `top --once` and `events --follow` against a fake daemon.</summary>
public sealed class StatsCommandsTests
{
    private const string Rates = """
        {"interval_ms": 10000, "counters_reset": false, "mips": 312.5, "cpu_percent": 97.5, "vcpu_percent": 95, "throttled_percent": 0,
         "disk_read_bytes_per_s": 2097152, "disk_write_bytes_per_s": 0, "disk_read_ops_per_s": 16, "disk_write_ops_per_s": 0,
         "net_rx_bytes_per_s": 1024, "net_tx_bytes_per_s": 512, "net_rx_packets_per_s": 2, "net_tx_packets_per_s": 1}
        """;

    private static readonly string Busy = $$"""
        {"id": "b1", "name": "busy", "state": "running", "vcpus": 2, "memory_mib": 256, "cpu_cap_percent": null,
         "at": "2026-11-24T10:00:00Z", "unavailable": null, "uptime_ms": 61000, "instructions_retired": 123456789,
         "cpu_time_ms": 60000, "vcpu_time_ms": 59000, "cpu_throttled_ms": 0, "guest_memory_bytes": 268435456, "host_rss_bytes": 104857600,
         "disk_read_bytes": 4096, "disk_written_bytes": 0, "net_rx_bytes": 10, "net_tx_bytes": 20,
         "drives": [{"drive_id": "rootfs", "reads": 7, "writes": 0, "bytes_read": 4096, "bytes_written": 0, "flushes": 0, "errors": 0, "throttled": 0}],
         "network_interfaces": [{"iface_id": "eth0", "rx_frames": 3, "rx_bytes": 10, "rx_dropped": 0, "tx_frames": 4, "tx_bytes": 20, "tx_dropped": 0, "rx_throttled": 0, "tx_throttled": 0}],
         "rates": {{Rates}}}
        """;

    private const string Parked = """
        {"id": "p1", "name": "parked", "state": "stopped", "vcpus": 1, "memory_mib": 128, "at": null, "uptime_ms": 0,
         "instructions_retired": 0, "host_rss_bytes": 0, "drives": [], "network_interfaces": [], "rates": null}
        """;

    [Fact]
    public void VmStatsShowsTheRatesCountersAndDevices()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/vms/busy/stats", HttpStatusCode.OK, Busy);
        var run = CliRun.Start(daemon, "vm", "stats", "busy");
        Assert.Equal(0, run.ExitCode);
        Assert.Matches(@"MIPS\s+312\.50", run.Output);
        Assert.Contains("97.5% VMM", run.Output);
        Assert.Contains("123,456,789", run.Output);
        Assert.Contains("2 MiB/s (16.0 ops/s) read", run.Output);
        Assert.Matches(@"rootfs\s+7", run.Output);
        Assert.Matches(@"eth0\s+3\s+10 B", run.Output);
        Assert.Contains("rates over 10.0 s", run.Output);
    }

    [Fact]
    public void VmStatsOfAStoppedVmShowsDashes()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/vms/parked/stats", HttpStatusCode.OK, Parked);
        var run = CliRun.Start(daemon, "vm", "stats", "parked");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("stopped", run.Output);
        Assert.Matches(@"MIPS\s+-", run.Output);
    }

    [Fact]
    public void VmStatsJsonIsTheDaemonsJson()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/vms/busy/stats", HttpStatusCode.OK, Busy);
        var run = CliRun.Start(daemon, "vm", "stats", "busy", "-o", "json");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal(Busy.Trim(), run.Output.Trim());
    }

    [Fact]
    public void HistoryPrintsARowPerSampleOldestFirst()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/vms/busy/stats/history", HttpStatusCode.OK, $$"""
            [{"counters": {"at": "2026-11-24T10:00:00Z", "host_rss_bytes": 1048576}, "rates": null},
             {"counters": {"at": "2026-11-24T10:00:10Z", "host_rss_bytes": 2097152}, "rates": {{Rates}}}]
            """);
        var run = CliRun.Start(daemon, "vm", "stats", "busy", "--history");
        Assert.Equal(0, run.ExitCode);
        var lines = run.Output.Split('\n').Where(l => l.Contains("MiB", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, lines.Count);
        Assert.Matches(@"-\s+-\s+-\s+1 MiB", lines[0]);
        Assert.Matches(@"312\.50\s+97\.5\s+95\.0\s+2 MiB\s+2 MiB/s", lines[1]);
    }

    [Fact]
    public void TopOncePrintsOneFrameBusiestFirst()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/host/stats", HttpStatusCode.OK, $$"""
            {"at": "2026-11-24T10:00:00Z", "cores": 2, "load_average": [1.5, 1, 0.5], "memory_total_bytes": 8589934592, "memory_available_bytes": 4294967296,
             "vms_by_state": {"running": 1, "stopped": 1}, "vcpus_allocated": 2, "memory_allocated_mib": 256,
             "totals": {"mips": 312.5, "cpu_percent": 97.5, "host_rss_bytes": 104857600},
             "vms": [{{Parked}}, {{Busy}}]}
            """);
        var run = CliRun.Start(daemon, "top", "--once");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("load 1.50 1.00 0.50 on 2 cores", run.Output);
        Assert.Contains("MIPS", run.Output);
        Assert.Matches(@"busy\s+running\s+2\s+97\.5\s+312\.5\s+256 MiB\s+100 MiB\s+2 MiB/s", run.Output);
        Assert.Matches(@"parked\s+stopped\s+1\s+-\s+-", run.Output);
        Assert.True(run.Output.IndexOf("busy", StringComparison.Ordinal) < run.Output.IndexOf("parked", StringComparison.Ordinal), "sorted by CPU");
        Assert.Single(daemon.Requests);
    }

    [Fact]
    public void TopRefusesANonsenseInterval()
    {
        var run = CliRun.Start(new FakeDaemon(), "top", "--interval", "0");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--interval", run.Errors);
    }

    [Fact]
    public void EventsFollowPrintsEachStreamedEventAndSaysWhenTheStreamEnds()
    {
        const string stream = """
            : heartbeat

            id: 7
            event: created
            data: {"id": 7, "at": "2026-11-24T10:00:00Z", "vm": "web1", "type": "created", "message": "created from image guest"}

            id: 8
            event: started
            data: {"id": 8, "at": "2026-11-24T10:00:01Z", "vm": "web1", "type": "started", "message": "started (pid 42)"}


            """;
        var daemon = new FakeDaemon().Answer("GET", "/v1/events/stream?vm=web1&since_id=6", HttpStatusCode.OK, stream, "text/event-stream");
        var run = CliRun.Start(daemon, "events", "--follow", "--vm", "web1", "--since-id", "6");
        Assert.Equal(5, run.ExitCode);
        Assert.Matches(@"web1\s+created\s+created from image guest", run.Output);
        Assert.Matches(@"web1\s+started\s+started \(pid 42\)", run.Output);
        Assert.True(run.Output.IndexOf("created", StringComparison.Ordinal) < run.Output.IndexOf("started", StringComparison.Ordinal));
        Assert.Contains("ended the event stream", run.Errors);

        var json = CliRun.Start(daemon, "events", "--follow", "--vm", "web1", "--since-id", "6", "-o", "json");
        var lines = json.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("{\"id\": 8,", lines[1]);
    }
}
