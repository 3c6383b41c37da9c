using System.Net;

namespace HostVM.Cli.Tests;

/// <summary>`hostvm token ...`: each command line becomes the request AccessApi serves, and the token is shown once, plainly.</summary>
public sealed class TokenCommandsTests
{
    private const string Secret = "hvt_0123456789abcdef_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA";

    private const string Details = """
        {"id": "0123456789abcdef", "description": "ci", "role": "operator", "project": "alpha", "created_at": "2026-01-01T10:00:00Z",
         "created_by": "local", "expires_at": "2026-01-31T10:00:00Z", "revoked_at": null}
        """;

    private const string Created = $$"""{"token": "{{Secret}}", "details": {{Details}}}""";

    [Fact]
    public void CreateSendsEveryOptionAndShowsTheTokenOnce()
    {
        var daemon = new FakeDaemon().Answer("POST", "/v1/tokens", HttpStatusCode.Created, Created);
        var run = CliRun.Start(daemon, "token", "create", "--role", "operator", "--project", "alpha", "--expires", "30d", "--description", "ci");
        Assert.Equal(0, run.ExitCode);
        daemon.Single("POST").AssertJson("""{"role": "operator", "project": "alpha", "expires_in": "30d", "description": "ci"}""");
        Assert.Contains("Created token 0123456789abcdef: operator of project alpha", run.Output);
        Assert.Single(run.Output.Split('\n'), l => l.Trim() == Secret); // on a line of its own, to copy
        Assert.Contains("will not be shown again", run.Output);
    }

    [Fact]
    public void CreateWithOnlyARoleMakesATokenOfEveryProjectThatDoesNotExpire()
    {
        var daemon = new FakeDaemon().Answer("POST", "/v1/tokens", HttpStatusCode.Created,
            Created.Replace("\"project\": \"alpha\"", "\"project\": null").Replace("\"2026-01-31T10:00:00Z\"", "null"));
        var run = CliRun.Start(daemon, "token", "create", "--role", "admin");
        Assert.Equal(0, run.ExitCode);
        daemon.Single("POST").AssertJson("""{"role": "admin"}""");
        Assert.Contains("of every project, valid until revoked", run.Output);
    }

    [Fact]
    public void CreateWithJsonOutputPrintsTheDaemonsAnswerOnly()
    {
        var daemon = new FakeDaemon().Answer("POST", "/v1/tokens", HttpStatusCode.Created, Created);
        var run = CliRun.Start(daemon, "token", "create", "--role", "viewer", "-o", "json");
        Assert.Equal(0, run.ExitCode);
        Assert.Equal(Created + Environment.NewLine, run.Output);
    }

    [Theory]
    [InlineData("--expires", "30", "--expires 30: write a whole number and a unit")]
    [InlineData("--expires", "1y", "--expires 1y")]
    [InlineData("--expires", "0d", "--expires 0d")]
    [InlineData("--role", "root", "root")]
    public void ABadValueIsExitCode2AndNothingIsSent(string option, string value, string mentions)
    {
        var daemon = new FakeDaemon();
        string[] args = option == "--role" ? ["token", "create", option, value] : ["token", "create", "--role", "admin", option, value];
        var run = CliRun.Start(daemon, args);
        Assert.Equal(ExitCodes.BadCommandLine, run.ExitCode);
        Assert.Contains(mentions, run.Errors);
        Assert.Empty(daemon.Requests);
    }

    [Fact]
    public void CreateWithoutARoleIsExitCode2()
    {
        var run = CliRun.Start(new FakeDaemon(), "token", "create");
        Assert.Equal(ExitCodes.BadCommandLine, run.ExitCode);
        Assert.Contains("--role", run.Errors);
    }

    [Fact]
    public void ListShowsEachTokensState()
    {
        string revoked = Details.Replace("0123456789abcdef", "1111111111111111").Replace("\"revoked_at\": null", "\"revoked_at\": \"2026-01-02T10:00:00Z\"");
        string expired = Details.Replace("0123456789abcdef", "2222222222222222").Replace("2026-01-31T10:00:00Z", "2020-01-31T10:00:00Z");
        string forever = Details.Replace("0123456789abcdef", "3333333333333333").Replace("\"project\": \"alpha\"", "\"project\": null")
            .Replace("\"expires_at\": \"2026-01-31T10:00:00Z\"", "\"expires_at\": null").Replace("\"operator\"", "\"admin\"");
        var daemon = new FakeDaemon().Answer("GET", "/v1/tokens", HttpStatusCode.OK, $"[{revoked}, {expired}, {forever}]");
        var run = CliRun.Start(daemon, "token", "list");
        Assert.Equal(0, run.ExitCode);
        var lines = run.Output.Split('\n');
        Assert.Contains(lines, l => l.Contains("ID") && l.Contains("ROLE") && l.Contains("PROJECT") && l.Contains("EXPIRES") && l.Contains("STATE"));
        Assert.Contains(lines, l => l.Contains("1111111111111111") && l.Contains("revoked") && l.Contains("alpha") && l.Contains("ci"));
        Assert.Contains(lines, l => l.Contains("2222222222222222") && l.Contains("expired"));
        Assert.Contains(lines, l => l.Contains("3333333333333333") && l.Contains("admin") && l.Contains("(all)") && l.Contains("never") && l.Contains("active"));
    }

    [Theory]
    [InlineData("0123456789abcdef")]
    [InlineData(Secret)] // a leaked token, revoked as it was found: only its id goes to the daemon
    public void RevokeDeletesByTheId(string given)
    {
        var daemon = new FakeDaemon().Answer("DELETE", "/v1/tokens/0123456789abcdef", HttpStatusCode.NoContent, string.Empty);
        var run = CliRun.Start(daemon, "token", "revoke", given);
        Assert.Equal(0, run.ExitCode);
        Assert.Equal("/v1/tokens/0123456789abcdef", daemon.Single("DELETE").PathAndQuery);
        Assert.Contains("Revoked token 0123456789abcdef.", run.Output);
    }

    [Fact]
    public void RevokingAnUnknownTokenIsExitCode3()
    {
        var daemon = new FakeDaemon().Problem("DELETE", "/v1/tokens/feedfeedfeedfeed", HttpStatusCode.NotFound,
            """{"status": 404, "title": "Not found", "detail": "There is no token 'feedfeedfeedfeed'."}""");
        var run = CliRun.Start(daemon, "token", "revoke", "feedfeedfeedfeed");
        Assert.Equal(ExitCodes.NotFound, run.ExitCode);
        Assert.Contains("hostvm: There is no token 'feedfeedfeedfeed'.", run.Errors);
    }
}
