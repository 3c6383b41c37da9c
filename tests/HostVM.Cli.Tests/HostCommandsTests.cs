using System.Net;

namespace HostVM.Cli.Tests;

/// <summary>`hostvm host info`, `hostvm events` and `hostvm network ...` against the fake daemon.</summary>
public sealed class HostCommandsTests
{
    [Fact]
    public void HostInfoShowsCapacityAndAllocation()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/host", HttpStatusCode.OK, """
            {"hostname": "box", "version": "1.0.0", "data_dir": "/var/lib/hostvm",
             "capacity": {"cores": 2, "vcpus": 8, "memory_mib": 22000, "disk_mib": 51200, "cpu_overcommit": 4.0, "memory_overcommit": 1.0},
             "allocated": {"vcpus": 2, "memory_mib": 256, "disk_mib": 64}, "vms": {"total": 3, "running": 1}}
            """);
        var run = CliRun.Start(daemon, "host", "info");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("2 of 8 allocated (2 cores × 4)", run.Output);
        Assert.Contains("3, 1 running", run.Output);
    }

    [Theory]
    [InlineData(new string[0], "/v1/events")]
    [InlineData(new[] { "--vm", "web1" }, "/v1/events?vm=web1")]
    [InlineData(new[] { "--vm", "web1", "--limit", "5" }, "/v1/events?vm=web1&limit=5")]
    public void EventsPutsVmAndLimitInTheQuery(string[] options, string path)
    {
        var daemon = new FakeDaemon().Answer("GET", path, HttpStatusCode.OK, """
            [{"id": 7, "at": "2026-01-01T10:00:00Z", "vm": "web1", "type": "crashed", "message": "the VMM died (killed by signal 9)"}]
            """);
        var run = CliRun.Start(daemon, ["events", .. options]);
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("the VMM died (killed by signal 9)", run.Output);
    }

    [Fact]
    public void EventsLimitMustBePositive()
    {
        var daemon = new FakeDaemon();
        Assert.Equal(ExitCodes.BadCommandLine, CliRun.Start(daemon, "events", "--limit", "0").ExitCode);
        Assert.Empty(daemon.Requests);
    }

    [Theory]
    [InlineData(new string[0], """{"name": "lan", "nat": false}""")]
    [InlineData(new[] { "--nat" }, """{"name": "lan", "nat": true}""")]
    public void NetworkCreateSendsNat(string[] options, string body)
    {
        var daemon = new FakeDaemon().Answer("POST", "/v1/networks", HttpStatusCode.Created, """{"name": "lan", "nat": true, "vms": [], "created_at": "2026-01-01T10:00:00Z"}""");
        var run = CliRun.Start(daemon, ["network", "create", "lan", .. options]);
        Assert.Equal(0, run.ExitCode);
        daemon.Single("POST").AssertJson(body);
        Assert.Contains("Created network lan with NAT.", run.Output);
    }

    [Fact]
    public void NetworkListAndDelete()
    {
        var daemon = new FakeDaemon()
            .Answer("GET", "/v1/networks", HttpStatusCode.OK, """[{"name": "lan", "nat": false, "vms": ["web1", "db"], "created_at": "2026-01-01T10:00:00Z"}]""")
            .Problem("DELETE", "/v1/networks/lan", HttpStatusCode.Conflict, """{"status": 409, "detail": "network 'lan' is used by web1, db; delete or stop them first"}""");
        var list = CliRun.Start(daemon, "network", "list");
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("web1, db", list.Output);
        var delete = CliRun.Start(daemon, "network", "delete", "lan");
        Assert.Equal(ExitCodes.Conflict, delete.ExitCode);
        Assert.Contains("used by web1, db", delete.Errors);
    }

    [Theory]
    [InlineData(new[] { "--allow", "10.1.2.3:5432", "--allow", "192.168.50.0/24" }, """{"allow": ["10.1.2.3:5432", "192.168.50.0/24"]}""", "also reach 10.1.2.3:5432 192.168.50.0/24")]
    [InlineData(new string[0], """{"allow": []}""", "public internet only")]
    public void NetworkEgressReplacesTheAllowList(string[] options, string body, string said)
    {
        string allowed = body.Replace("{\"allow\": ", string.Empty, StringComparison.Ordinal).TrimEnd('}');
        var daemon = new FakeDaemon().Answer("PUT", "/v1/networks/lan/egress", HttpStatusCode.OK,
            $$"""{"name": "lan", "nat": true, "vms": [], "created_at": "2026-01-01T10:00:00Z", "egress_allow": {{allowed}}}""");
        var run = CliRun.Start(daemon, ["network", "egress", "lan", .. options]);
        Assert.True(run.ExitCode == 0, run.Errors);
        daemon.Single("PUT").AssertJson(body);
        Assert.Contains(said, run.Output, StringComparison.Ordinal);
    }
}
