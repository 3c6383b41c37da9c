using System.Net;

namespace HostVM.Cli.Tests;

/// <summary>`hostvm vm ...`: each command line becomes the request docs/host-api.md describes.</summary>
public sealed class VmCommandsTests
{
    private const string Web1 = """
        {"id": "0b6c", "name": "web1", "image": "alpine", "state": "running", "vcpus": 2, "memory_mib": 1024,
         "cpu_cap_percent": 50, "cpu_weight": 200, "disk_mib": 2048, "boot_args": "console=ttyS0", "restart_policy": "always",
         "networks": [{"network": "lan", "mac": "52:54:00:12:34:56"}],
         "disk_limits": {"bandwidth_bytes_per_s": null, "ops_per_s": 100}, "nic_limits": {"bandwidth_bytes_per_s": null, "ops_per_s": null},
         "balloon": true, "balloon_mib": 0, "pid": 4242, "started_at": "2026-01-01T10:00:00Z", "created_at": "2026-01-01T09:00:00Z",
         "restarts": 0, "last_exit": null}
        """;

    [Fact]
    public void CreateSendsEveryOption()
    {
        var daemon = new FakeDaemon().Answer("POST", "/v1/vms", HttpStatusCode.Created, Web1);
        var run = CliRun.Start(daemon,
            "vm", "create", "web1", "--image", "alpine", "--vcpus", "2", "--memory", "1G", "--cpu-cap", "50", "--cpu-weight", "200",
            "--disk-size", "2G", "--network", "lan", "--network", "wan,mac=52:54:00:00:00:01", "--restart", "always",
            "--disk-bw", "10M/s", "--disk-ops", "500/s", "--nic-bw", "1M/100ms", "--balloon", "--append", "console=ttyS0 quiet", "--start");
        Assert.Equal(0, run.ExitCode);
        daemon.Single("POST").AssertJson("""
            {"name": "web1", "image": "alpine", "vcpus": 2, "memory_mib": 1024, "cpu_cap_percent": 50, "cpu_weight": 200,
             "disk_mib": 2048, "boot_args": "console=ttyS0 quiet", "restart_policy": "always",
             "networks": [{"network": "lan"}, {"network": "wan", "mac": "52:54:00:00:00:01"}],
             "disk_limits": {"bandwidth_bytes_per_s": 10485760, "ops_per_s": 500},
             "nic_limits": {"bandwidth_bytes_per_s": 10485760, "ops_per_s": null},
             "balloon": true, "start": true}
            """);
        Assert.Contains("Created VM web1 (running)", run.Output);
    }

    [Fact]
    public void CreateWithoutOptionsLeavesTheDefaultsToTheDaemon()
    {
        var daemon = new FakeDaemon().Answer("POST", "/v1/vms", HttpStatusCode.Created, Web1);
        var run = CliRun.Start(daemon, "vm", "create", "web1", "--image", "alpine");
        Assert.Equal(0, run.ExitCode);
        daemon.Single("POST").AssertJson("""{"name": "web1", "image": "alpine"}""");
    }

    [Fact]
    public void ACloneNamesItsSourceAndAttachedVolumesInTheDefaultPoolAreNamedWhole()
    {
        var daemon = new FakeDaemon().Answer("POST", "/v1/vms", HttpStatusCode.Created, Web1);
        var run = CliRun.Start(daemon, "vm", "create", "web2", "--clone-of", "web1", "--disk", "data", "--disk", "fast/logs");
        Assert.True(run.ExitCode == 0, run.Errors);
        daemon.Single("POST").AssertJson("""{"name": "web2", "clone_of": "web1", "volumes": ["default/data", "fast/logs"]}""");
    }

    [Theory]
    [InlineData("--image", "alpine", "--clone-of", "web1")]
    [InlineData("--disk", "a/b/c", "--image", "alpine")]
    public void AnImageAndACloneSourceTogetherOrABadVolumeAreRefusedBeforeSending(string o1, string v1, string o2, string v2)
    {
        var daemon = new FakeDaemon();
        var run = CliRun.Start(daemon, "vm", "create", "web2", o1, v1, o2, v2);
        Assert.Equal(ExitCodes.BadCommandLine, run.ExitCode);
        Assert.Empty(daemon.Requests);
    }

    [Theory]
    [InlineData("--memory", "lots", "--memory lots: not a size")]
    [InlineData("--memory", "1536K", "not a whole number of MiB")]
    [InlineData("--disk-size", "0", "--disk-size 0: not a size")]
    [InlineData("--disk-bw", "10M", "write SIZE/TIME")]
    [InlineData("--disk-bw", "10M/minute", "needs a unit")]
    [InlineData("--nic-ops", "many/s", "not a whole number")]
    [InlineData("--network", "mac=52:54:00:00:00:01", "write --network NAME")]
    [InlineData("--network", "lan,speed=fast", "unknown key 'speed'")]
    [InlineData("--restart", "sometimes", "sometimes")]
    [InlineData("--vcpus", "two", "two")]
    public void ABadValueIsExitCode2AndNamesIt(string option, string value, string mentions)
    {
        var daemon = new FakeDaemon();
        var run = CliRun.Start(daemon, "vm", "create", "web1", "--image", "alpine", option, value);
        Assert.Equal(ExitCodes.BadCommandLine, run.ExitCode);
        Assert.StartsWith("hostvm: ", run.Errors);
        Assert.Contains(mentions, run.Errors);
        Assert.Empty(daemon.Requests); // nothing was sent
    }

    [Fact]
    public void AMissingImageOptionIsExitCode2()
    {
        var run = CliRun.Start(new FakeDaemon(), "vm", "create", "web1");
        Assert.Equal(ExitCodes.BadCommandLine, run.ExitCode);
        Assert.Contains("--image", run.Errors);
        Assert.Contains("hostvm vm create --help", run.Errors);
    }

    [Theory]
    [InlineData(new string[0], "{}")]
    [InlineData(new[] { "--force" }, """{"force": true}""")]
    [InlineData(new[] { "--timeout", "10" }, """{"timeout_s": 10}""")]
    public void StopSendsForceAndTimeout(string[] options, string body)
    {
        var daemon = new FakeDaemon().Answer("POST", "/v1/vms/web1/stop", HttpStatusCode.OK, Web1.Replace("\"running\"", "\"stopped\""));
        var run = CliRun.Start(daemon, ["vm", "stop", "web1", .. options]);
        Assert.Equal(0, run.ExitCode);
        daemon.Single("POST").AssertJson(body);
        Assert.Contains("web1 is stopped.", run.Output);
    }

    [Fact]
    public void RestartTakesTheStopBody()
    {
        var daemon = new FakeDaemon().Answer("POST", "/v1/vms/web1/restart", HttpStatusCode.OK, Web1);
        Assert.Equal(0, CliRun.Start(daemon, "vm", "restart", "web1", "--timeout", "5").ExitCode);
        daemon.Single("POST").AssertJson("""{"timeout_s": 5}""");
    }

    [Theory]
    [InlineData("start")]
    [InlineData("pause")]
    [InlineData("resume")]
    public void ActionsPostToTheirPath(string verb)
    {
        var daemon = new FakeDaemon().Answer("POST", $"/v1/vms/web1/{verb}", HttpStatusCode.OK, Web1);
        var run = CliRun.Start(daemon, "vm", verb, "web1");
        Assert.Equal(0, run.ExitCode);
        Assert.Empty(daemon.Single("POST").Body);
        Assert.Contains("web1 is running.", run.Output);
    }

    [Theory]
    [InlineData(new string[0], "/v1/vms/web1")]
    [InlineData(new[] { "--force" }, "/v1/vms/web1?force=true")]
    [InlineData(new[] { "--force", "--purge" }, "/v1/vms/web1?force=true&purge=true")]
    public void DeletePutsForceAndPurgeInTheQuery(string[] options, string path)
    {
        var daemon = new FakeDaemon().Answer("DELETE", path, HttpStatusCode.NoContent, string.Empty);
        var run = CliRun.Start(daemon, ["vm", "delete", "web1", .. options]);
        Assert.Equal(0, run.ExitCode);
        Assert.Equal(path, daemon.Single("DELETE").PathAndQuery);
        Assert.Contains("Deleted VM web1", run.Output);
    }

    [Fact]
    public void DeleteWithJsonOutputPrintsNothing()
    {
        var daemon = new FakeDaemon().Answer("DELETE", "/v1/vms/web1", HttpStatusCode.NoContent, string.Empty);
        var run = CliRun.Start(daemon, "vm", "delete", "web1", "-o", "json");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal(string.Empty, run.Output);
    }

    [Fact]
    public void SetChangesOneLimitAndKeepsTheOther()
    {
        var daemon = new FakeDaemon()
            .Answer("GET", "/v1/vms/web1", HttpStatusCode.OK, Web1)
            .Answer("PATCH", "/v1/vms/web1", HttpStatusCode.OK, Web1);
        var run = CliRun.Start(daemon, "vm", "set", "web1", "--disk-bw", "20M/s", "--cpu-cap", "25", "--balloon-mib", "64", "--restart", "never");
        Assert.Equal(0, run.ExitCode);
        daemon.Single("PATCH").AssertJson("""
            {"cpu_cap_percent": 25, "disk_limits": {"bandwidth_bytes_per_s": 20971520, "ops_per_s": 100},
             "balloon_mib": 64, "restart_policy": "never"}
            """);
    }

    [Fact]
    public void SetNoneLiftsALimit()
    {
        var daemon = new FakeDaemon()
            .Answer("GET", "/v1/vms/web1", HttpStatusCode.OK, Web1)
            .Answer("PATCH", "/v1/vms/web1", HttpStatusCode.OK, Web1);
        Assert.Equal(0, CliRun.Start(daemon, "vm", "set", "web1", "--disk-ops", "none").ExitCode);
        daemon.Single("PATCH").AssertJson("""{"disk_limits": {"bandwidth_bytes_per_s": null, "ops_per_s": null}}""");
    }

    [Fact]
    public void SetWithoutAChangeIsExitCode2()
    {
        var daemon = new FakeDaemon();
        var run = CliRun.Start(daemon, "vm", "set", "web1");
        Assert.Equal(ExitCodes.BadCommandLine, run.ExitCode);
        Assert.Contains("nothing to change", run.Errors);
        Assert.Empty(daemon.Requests);
    }

    [Fact]
    public void JsonOutputIsTheDaemonsJsonUnchanged()
    {
        string body = "[" + Web1 + "]";
        var daemon = new FakeDaemon().Answer("GET", "/v1/vms", HttpStatusCode.OK, body);
        var run = CliRun.Start(daemon, "vm", "list", "--output", "json");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal(body + Environment.NewLine, run.Output);
    }

    [Fact]
    public void GlobalOptionsMayComeBeforeTheCommand()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/vms", HttpStatusCode.OK, "[]");
        var run = CliRun.Start(daemon, "-o", "json", "--host", "http://192.0.2.1:9", "vm", "list");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal("[]" + Environment.NewLine, run.Output);
    }

    [Fact]
    public void ListShowsATableWithoutColourWhenNotATerminal()
    {
        string stopped = Web1.Replace("\"web1\"", "\"db\"").Replace("\"running\"", "\"failed\"");
        var daemon = new FakeDaemon().Answer("GET", "/v1/vms", HttpStatusCode.OK, $"[{Web1}, {stopped}]");
        var run = CliRun.Start(daemon, "vm", "list");
        Assert.Equal(0, run.ExitCode);
        var lines = run.Output.Split('\n');
        Assert.Contains(lines, l => l.Contains("NAME") && l.Contains("STATE") && l.Contains("MEMORY"));
        Assert.Contains(lines, l => l.Contains("web1") && l.Contains("running") && l.Contains("1 GiB") && l.Contains("lan"));
        Assert.Contains(lines, l => l.Contains("db") && l.Contains("failed"));
        Assert.DoesNotContain("\u001b[", run.Output);
    }

    [Fact]
    public void ShowPrintsTheFields()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/vms/web1", HttpStatusCode.OK, Web1);
        var run = CliRun.Start(daemon, "vm", "show", "web1");
        Assert.True(run.ExitCode == 0, run.Errors);
        Assert.Contains("capped at 50%", run.Output);
        Assert.Contains("52:54:00:12:34:56", run.Output);
        Assert.Contains("100 ops/s", run.Output);
    }

    [Fact]
    public void ANameIsEscapedInThePath()
    {
        var daemon = new FakeDaemon();
        CliRun.Start(daemon, "vm", "show", "a b/c");
        Assert.Equal("/v1/vms/a%20b%2Fc", daemon.Single("GET").PathAndQuery);
    }
}
