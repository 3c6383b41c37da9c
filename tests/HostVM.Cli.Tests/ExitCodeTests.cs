using System.Net;

namespace HostVM.Cli.Tests;

/// <summary>Every way a daemon command can fail ends in `hostvm: ...` on stderr and the documented exit code.</summary>
public sealed class ExitCodeTests
{
    [Theory]
    [InlineData(400, ExitCodes.Refused)]
    [InlineData(403, ExitCodes.Refused)]
    [InlineData(404, ExitCodes.NotFound)]
    [InlineData(409, ExitCodes.Conflict)]
    [InlineData(413, ExitCodes.Refused)]
    [InlineData(500, ExitCodes.DaemonError)]
    [InlineData(503, ExitCodes.DaemonError)]
    public void StatusMapsToExitCode(int status, int exitCode)
    {
        var daemon = new FakeDaemon().Problem("POST", "/v1/vms/web1/start", (HttpStatusCode)status,
            $$"""{"type": "https://hostvm.dev/problems/x", "title": "Refused", "status": {{status}}, "detail": "the detail for {{status}}"}""");
        var run = CliRun.Start(daemon, "vm", "start", "web1");
        Assert.Equal(exitCode, run.ExitCode);
        Assert.Equal($"hostvm: the detail for {status}\n", run.Errors.ReplaceLineEndings("\n"));
        Assert.Equal(string.Empty, run.Output);
    }

    [Fact]
    public void FieldErrorsFollowTheDetail()
    {
        var daemon = new FakeDaemon().Problem("POST", "/v1/vms", HttpStatusCode.Conflict, """
            {"type": "https://hostvm.dev/problems/does-not-fit", "title": "The VM does not fit on this host", "status": 409,
             "detail": "memory: 4096 MiB asked, 1536 MiB free of 7680 MiB (overcommit 1.0)",
             "errors": {"memory_mib": ["4096 MiB asked, 1536 MiB free"]}}
            """);
        var run = CliRun.Start(daemon, "vm", "create", "big", "--image", "alpine", "--memory", "4G", "--start");
        Assert.Equal(ExitCodes.Conflict, run.ExitCode);
        Assert.Equal(
            "hostvm: memory: 4096 MiB asked, 1536 MiB free of 7680 MiB (overcommit 1.0)\nhostvm:   memory_mib: 4096 MiB asked, 1536 MiB free\n",
            run.Errors.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void AFieldErrorThatRepeatsTheDetailIsNotPrintedTwice()
    {
        var daemon = new FakeDaemon().Problem("POST", "/v1/networks", HttpStatusCode.BadRequest,
            """{"title": "The request is not valid", "status": 400, "detail": "name 'Lan': use lower-case letters", "errors": {"name": ["name 'Lan': use lower-case letters"]}}""");
        var run = CliRun.Start(daemon, "network", "create", "Lan");
        Assert.Equal(ExitCodes.Refused, run.ExitCode);
        Assert.Single(run.Errors.Trim().Split('\n'));
    }

    [Fact]
    public void AProblemWithoutDetailShowsItsTitle()
    {
        var daemon = new FakeDaemon().Problem("GET", "/v1/host", HttpStatusCode.RequestEntityTooLarge, """{"title": "Request body too large", "status": 413}""");
        var run = CliRun.Start(daemon, "host", "info");
        Assert.Equal(ExitCodes.Refused, run.ExitCode);
        Assert.Contains("hostvm: Request body too large", run.Errors);
    }

    [Fact]
    public void AnErrorThatIsNotProblemJsonShowsTheStatusAndBody()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/host", HttpStatusCode.BadGateway, "upstream went away\nmore", "text/plain");
        var run = CliRun.Start(daemon, "host", "info");
        Assert.Equal(ExitCodes.DaemonError, run.ExitCode);
        Assert.Equal("hostvm: the daemon answered 502 Bad Gateway: upstream went away\n", run.Errors.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void AnAnswerThisClientCannotReadIsADaemonError()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/vms", HttpStatusCode.OK, "{\"not\": \"a list\"}");
        var run = CliRun.Start(daemon, "vm", "list");
        Assert.Equal(ExitCodes.DaemonError, run.ExitCode);
        Assert.Contains("not what this hostvm understands", run.Errors);
    }

    [Fact]
    public void ARefusedConnectionIsExitCode5AndSaysHowToStartTheDaemon()
    {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        var run = CliRun.Start(null, "--host", "http://127.0.0.1:1", "vm", "list");
        Assert.Equal(ExitCodes.Unreachable, run.ExitCode);
        Assert.Contains("cannot reach the daemon at http://127.0.0.1:1 (connection refused; the address from --host)", run.Errors);
        Assert.Contains("hostvm serve", run.Errors);
        Assert.DoesNotContain("   at ", run.Errors);
    }

    [Fact]
    public void AMissingSocketIsExitCode5()
    {
        string path = Path.Combine(Path.GetTempPath(), $"hostvm-no-daemon-{Guid.NewGuid():N}.sock");
        var run = CliRun.Start(null, new Dictionary<string, string> { ["HOSTVM_HOST"] = "unix:" + path }, "image", "list");
        Assert.Equal(ExitCodes.Unreachable, run.ExitCode);
        Assert.Contains($"unix:{path}", run.Errors);
        Assert.Contains("from HOSTVM_HOST", run.Errors);
    }

    [Fact]
    public void AnUnknownOptionIsExitCode2()
    {
        var run = CliRun.Start(new FakeDaemon(), "vm", "list", "--colour");
        Assert.Equal(ExitCodes.BadCommandLine, run.ExitCode);
        Assert.Contains("--colour", run.Errors);
    }

    [Fact]
    public void ABadHostIsExitCode2()
    {
        var run = CliRun.Start(new FakeDaemon(), "vm", "list", "--host", "ftp://example");
        Assert.Equal(ExitCodes.BadCommandLine, run.ExitCode);
        Assert.Contains("--host ftp://example: not a daemon address", run.Errors);
    }

    [Fact]
    public void HelpListsTheExitCodes()
    {
        var run = CliRun.Start(null, "--help");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("3 not found", run.Output);
        Assert.Contains("5 cannot reach the daemon", run.Output);
        Assert.Contains("7 the daemon's certificate is not trusted", run.Output);
    }
}
