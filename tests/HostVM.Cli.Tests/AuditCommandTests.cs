using System.Globalization;
using System.Net;
using System.Web;

namespace HostVM.Cli.Tests;

/// <summary>`hostvm audit`: the filters become GET /v1/audit's query; the entries a table in the daemon's order (newest first).</summary>
public sealed class AuditCommandTests
{
    private const string Entries = """
        [{"id": 7, "at": "2026-01-01T10:05:00Z", "who": "0123456789abcdef", "role": "operator", "project": "alpha", "remote": "192.0.2.7",
          "method": "POST", "path": "/v1/vms", "action": "vm.create", "object": "vm/web2", "status": 409,
          "detail": "VM 'web2' does not fit in project 'alpha'"},
         {"id": 6, "at": "2026-01-01T10:00:00Z", "who": "local", "role": "admin", "project": "alpha", "remote": "unix",
          "method": "POST", "path": "/v1/vms", "action": "vm.create", "object": "vm/web1", "status": 201, "detail": null}]
        """;

    private static System.Collections.Specialized.NameValueCollection Query(RecordedRequest request) =>
        HttpUtility.ParseQueryString(new Uri("http://x" + request.PathAndQuery).Query);

    [Fact]
    public void FiltersGoInTheQuery()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/audit?until=2026-01-31T10%3A00%3A00.000Z&project=alpha&object=vm%2Fweb1&who=local&limit=20",
            HttpStatusCode.OK, Entries);
        var run = CliRun.Start(daemon, "audit", "--until", "2026-01-31T10:00:00Z", "--project", "alpha", "--vm", "web1", "--who", "local", "--limit", "20");
        Assert.True(run.ExitCode == 0, run.Errors);
    }

    [Fact]
    public void ADurationSinceIsThatLongAgo()
    {
        var daemon = new FakeDaemon();
        var before = DateTimeOffset.UtcNow;
        CliRun.Start(daemon, "audit", "--since", "2h", "--object", "network/lan");
        var after = DateTimeOffset.UtcNow;
        var query = Query(daemon.Single("GET"));
        Assert.Equal("network/lan", query["object"]);
        var since = DateTimeOffset.Parse(query["since"]!, CultureInfo.InvariantCulture);
        Assert.InRange(since, before.AddHours(-2).AddSeconds(-1), after.AddHours(-2));
    }

    [Fact]
    public void WithoutFiltersTheQueryIsEmpty()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/audit", HttpStatusCode.OK, "[]");
        var run = CliRun.Start(daemon, "audit");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("No audit entries match.", run.Output);
    }

    [Fact]
    public void EntriesAreATableInTheDaemonsOrder()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/audit", HttpStatusCode.OK, Entries);
        var run = CliRun.Start(daemon, "audit");
        Assert.Equal(0, run.ExitCode);
        var lines = run.Output.Split('\n');
        Assert.Contains(lines, l => l.Contains("AT") && l.Contains("WHO") && l.Contains("ROLE") && l.Contains("FROM") && l.Contains("ACTION") && l.Contains("OBJECT") && l.Contains("STATUS"));
        int refused = Array.FindIndex(lines, l => l.Contains("0123456789abcdef") && l.Contains("192.0.2.7") && l.Contains("vm/web2") && l.Contains("409") && l.Contains("does not fit"));
        int created = Array.FindIndex(lines, l => l.Contains("local") && l.Contains("unix") && l.Contains("vm.create") && l.Contains("vm/web1") && l.Contains("201"));
        Assert.True(refused > 0 && created > refused, run.Output);
    }

    [Fact]
    public void JsonOutputIsTheDaemonsJson()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/audit", HttpStatusCode.OK, Entries);
        var run = CliRun.Start(daemon, "audit", "-o", "json");
        Assert.Equal(Entries + Environment.NewLine, run.Output);
    }

    [Theory]
    [InlineData(new[] { "--vm", "web1", "--object", "vm/web2" }, "give one of them")]
    [InlineData(new[] { "--since", "yesterday" }, "--since yesterday: write how long ago")]
    [InlineData(new[] { "--until", "5x" }, "--until 5x")]
    [InlineData(new[] { "--limit", "0" }, "--limit 0")]
    public void ABadFilterIsExitCode2AndNothingIsSent(string[] options, string mentions)
    {
        var daemon = new FakeDaemon();
        var run = CliRun.Start(daemon, ["audit", .. options]);
        Assert.Equal(ExitCodes.BadCommandLine, run.ExitCode);
        Assert.Contains(mentions, run.Errors);
        Assert.Empty(daemon.Requests);
    }
}
