using System.Net;

namespace HostVM.Cli.Tests;

/// <summary>`hostvm project ...`: quotas from the command line into the request, and usage against them in the output.</summary>
public sealed class ProjectCommandsTests
{
    private const string Alpha = """
        {"name": "alpha", "description": "team a", "quotas": {"max_vms": 5, "max_vcpus": 8, "max_memory_mib": 4096, "max_disk_mib": null, "max_networks": 3},
         "usage": {"vms": 2, "vcpus": 3, "memory_mib": 1536, "disk_mib": 2048, "images": 1, "networks": 1}, "created_at": "2026-01-01T10:00:00Z"}
        """;

    [Fact]
    public void CreateSendsTheQuotas()
    {
        var daemon = new FakeDaemon().Answer("POST", "/v1/projects", HttpStatusCode.Created, Alpha);
        var run = CliRun.Start(daemon, "project", "create", "alpha", "--description", "team a", "--max-vms", "5", "--max-vcpus", "8", "--max-memory", "4G", "--max-disk", "20480", "--max-networks", "3");
        Assert.Equal(0, run.ExitCode);
        daemon.Single("POST").AssertJson("""
            {"name": "alpha", "description": "team a", "quotas": {"max_vms": 5, "max_vcpus": 8, "max_memory_mib": 4096, "max_disk_mib": 20480, "max_networks": 3}}
            """);
        Assert.Contains("Created project alpha.", run.Output);
        Assert.Contains("2 of 5", run.Output);
    }

    [Fact]
    public void CreateWithoutQuotasSendsNone()
    {
        var daemon = new FakeDaemon().Answer("POST", "/v1/projects", HttpStatusCode.Created, Alpha);
        Assert.Equal(0, CliRun.Start(daemon, "project", "create", "alpha").ExitCode);
        daemon.Single("POST").AssertJson("""{"name": "alpha"}""");
    }

    [Theory]
    [InlineData("--max-vms", "five", "--max-vms five: write a whole number")]
    [InlineData("--max-vms", "-1", "--max-vms -1")]
    [InlineData("--max-vcpus", "99999999999", "--max-vcpus 99999999999: too large")]
    [InlineData("--max-memory", "lots", "--max-memory lots: not a size")]
    [InlineData("--max-networks", "-2", "--max-networks -2")]
    public void ABadQuotaIsExitCode2AndNothingIsSent(string option, string value, string mentions)
    {
        var daemon = new FakeDaemon();
        var run = CliRun.Start(daemon, "project", "create", "alpha", option, value);
        Assert.Equal(ExitCodes.BadCommandLine, run.ExitCode);
        Assert.Contains(mentions, run.Errors);
        Assert.Empty(daemon.Requests);
    }

    [Fact]
    public void ListShowsUsageAgainstQuotas()
    {
        string open = Alpha.Replace("\"alpha\"", "\"default\"").Replace("\"max_vms\": 5, \"max_vcpus\": 8, \"max_memory_mib\": 4096", "\"max_vms\": null, \"max_vcpus\": null, \"max_memory_mib\": null")
            .Replace("\"max_networks\": 3", "\"max_networks\": null");
        var daemon = new FakeDaemon().Answer("GET", "/v1/projects", HttpStatusCode.OK, $"[{open}, {Alpha}]");
        var run = CliRun.Start(daemon, "project", "list");
        Assert.Equal(0, run.ExitCode);
        var lines = run.Output.Split('\n');
        Assert.Contains(lines, l => l.Contains("NAME") && l.Contains("VMS") && l.Contains("VCPUS") && l.Contains("MEMORY"));
        Assert.Contains(lines, l => l.Contains("alpha") && l.Contains("2/5") && l.Contains("3/8") && l.Contains("1.5 GiB/4 GiB") && l.Contains("1/3") && l.Contains("team a"));
        Assert.Contains(lines, l => l.Contains("default") && !l.Contains('/'));
    }

    [Fact]
    public void ShowPrintsUsageAndQuotas()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/projects/alpha", HttpStatusCode.OK, Alpha);
        var run = CliRun.Start(daemon, "project", "show", "alpha");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("2 of 5", run.Output);
        Assert.Contains("1.5 GiB of 4 GiB", run.Output);
        Assert.Contains("2 GiB (no limit)", run.Output);
        Assert.Contains("1 of 3", run.Output); // networks
    }

    [Fact]
    public void SetChangesTheGivenQuotasAndKeepsTheOthers()
    {
        var daemon = new FakeDaemon()
            .Answer("GET", "/v1/projects/alpha", HttpStatusCode.OK, Alpha)
            .Answer("PATCH", "/v1/projects/alpha", HttpStatusCode.OK, Alpha);
        var run = CliRun.Start(daemon, "project", "set", "alpha", "--max-vms", "10", "--max-memory", "none", "--max-disk", "1G");
        Assert.Equal(0, run.ExitCode);
        daemon.Single("PATCH").AssertJson("""{"quotas": {"max_vms": 10, "max_vcpus": 8, "max_disk_mib": 1024, "max_networks": 3}}""");
    }

    [Fact]
    public void SetOfTheNetworkQuotaAloneKeepsTheOthers()
    {
        var daemon = new FakeDaemon()
            .Answer("GET", "/v1/projects/alpha", HttpStatusCode.OK, Alpha)
            .Answer("PATCH", "/v1/projects/alpha", HttpStatusCode.OK, Alpha);
        var run = CliRun.Start(daemon, "project", "set", "alpha", "--max-networks", "none");
        Assert.Equal(0, run.ExitCode);
        daemon.Single("PATCH").AssertJson("""{"quotas": {"max_vms": 5, "max_vcpus": 8, "max_memory_mib": 4096}}""");
    }

    [Fact]
    public void SetOfTheDescriptionAloneLeavesTheQuotasOut()
    {
        var daemon = new FakeDaemon().Answer("PATCH", "/v1/projects/alpha", HttpStatusCode.OK, Alpha);
        var run = CliRun.Start(daemon, "project", "set", "alpha", "--description", "team b");
        Assert.Equal(0, run.ExitCode);
        Assert.Single(daemon.Requests); // no need to read the quotas first
        daemon.Single("PATCH").AssertJson("""{"description": "team b"}""");
    }

    [Fact]
    public void SetWithoutAChangeIsExitCode2()
    {
        var daemon = new FakeDaemon();
        var run = CliRun.Start(daemon, "project", "set", "alpha");
        Assert.Equal(ExitCodes.BadCommandLine, run.ExitCode);
        Assert.Contains("nothing to change", run.Errors);
        Assert.Empty(daemon.Requests);
    }

    [Fact]
    public void DeleteOfAProjectThatHoldsThingsIsExitCode4()
    {
        var daemon = new FakeDaemon().Problem("DELETE", "/v1/projects/alpha", HttpStatusCode.Conflict,
            """{"status": 409, "title": "Conflict", "detail": "Project 'alpha' holds 2 VMs, 1 images, 0 networks and 0 live tokens; delete or revoke them first."}""");
        var run = CliRun.Start(daemon, "project", "delete", "alpha");
        Assert.Equal(ExitCodes.Conflict, run.ExitCode);
        Assert.Contains("delete or revoke them first", run.Errors);
    }

    [Fact]
    public void DeleteSaysSo()
    {
        var daemon = new FakeDaemon().Answer("DELETE", "/v1/projects/alpha", HttpStatusCode.NoContent, string.Empty);
        var run = CliRun.Start(daemon, "project", "rm", "alpha");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("Deleted project alpha.", run.Output);
    }
}
