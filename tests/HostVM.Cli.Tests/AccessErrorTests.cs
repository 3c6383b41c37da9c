using System.Net;

namespace HostVM.Cli.Tests;

/// <summary>What a daemon command says and returns when access control refuses it, and --project on the commands that create.</summary>
public sealed class AccessErrorTests
{
    private const string Vm = """
        {"id": "0b6c", "name": "web1", "project": "alpha", "image": "alpine", "state": "stopped", "vcpus": 1, "memory_mib": 128,
         "cpu_weight": 100, "disk_mib": 0, "boot_args": "", "restart_policy": "on-failure", "networks": [], "balloon": false,
         "balloon_mib": 0, "restarts": 0}
        """;

    [Fact]
    public void WithoutATokenIsExitCode1AndSaysHowToPassOne()
    {
        var daemon = new FakeDaemon().Problem("GET", "/v1/vms", HttpStatusCode.Unauthorized,
            """{"type": "unauthorized", "title": "A token is needed", "status": 401, "detail": "GET /v1/vms needs a token: send Authorization: Bearer hvt_..."}""");
        var run = CliRun.Start(daemon, "vm", "list");
        Assert.Equal(ExitCodes.Refused, run.ExitCode);
        var lines = run.Errors.ReplaceLineEndings("\n").TrimEnd().Split('\n');
        Assert.Equal("hostvm: GET /v1/vms needs a token: send Authorization: Bearer hvt_...", lines[0]);
        Assert.Contains("--token", lines[1]);
        Assert.Contains("HOSTVM_TOKEN", lines[1]);
        Assert.Contains("hostvm login", lines[1]);
    }

    [Fact]
    public void ARoleThatMayNotIsExitCode1AndSaysWhichTokenToUse()
    {
        var daemon = new FakeDaemon().Problem("POST", "/v1/tokens", HttpStatusCode.Forbidden,
            """{"type": "forbidden", "title": "The token's role may not do this", "status": 403, "detail": "token.create needs the admin role; token 0123456789abcdef is operator."}""");
        var run = CliRun.Start(daemon, "token", "create", "--role", "viewer");
        Assert.Equal(ExitCodes.Refused, run.ExitCode);
        Assert.Contains("hostvm: token.create needs the admin role; token 0123456789abcdef is operator.", run.Errors);
        Assert.Contains("use a token that does", run.Errors);
        Assert.DoesNotContain("--token or", run.Errors); // that is 401's advice
    }

    [Fact]
    public void TooManyFailuresIsExitCode1()
    {
        var daemon = new FakeDaemon().Problem("GET", "/v1/audit", HttpStatusCode.TooManyRequests,
            """{"title": "Too many failed authentications", "status": 429, "detail": "10 failed authentications from 192.0.2.7 within 60 s; wait 42 s."}""");
        var run = CliRun.Start(daemon, "audit");
        Assert.Equal(ExitCodes.Refused, run.ExitCode);
        Assert.Equal("hostvm: 10 failed authentications from 192.0.2.7 within 60 s; wait 42 s.\n", run.Errors.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void AProjectOfAnotherTenantIsExitCode3()
    {
        var daemon = new FakeDaemon().Problem("POST", "/v1/vms", HttpStatusCode.NotFound,
            """{"status": 404, "title": "No such project", "detail": "There is no project 'beta'."}""");
        var run = CliRun.Start(daemon, "vm", "create", "web1", "--image", "alpine", "--project", "beta");
        Assert.Equal(ExitCodes.NotFound, run.ExitCode);
        Assert.Contains("There is no project 'beta'.", run.Errors);
    }

    [Fact]
    public void AnExceededQuotaIsExitCode4AndNamesEachQuota()
    {
        var daemon = new FakeDaemon().Problem("POST", "/v1/vms", HttpStatusCode.Conflict, """
            {"type": "quota-exceeded", "title": "The project's quota would be exceeded", "status": 409,
             "detail": "VM 'web2' does not fit in project 'alpha': project 'alpha' has 1 of 1; this VM needs 1 more. Raise the quota (hostvm project set) or free resources.",
             "errors": {"max_vms": ["project 'alpha' has 1 of 1; this VM needs 1 more."]}}
            """);
        var run = CliRun.Start(daemon, "vm", "create", "web2", "--image", "alpine", "--project", "alpha");
        Assert.Equal(ExitCodes.Conflict, run.ExitCode);
        Assert.Equal(
            "hostvm: VM 'web2' does not fit in project 'alpha': project 'alpha' has 1 of 1; this VM needs 1 more. Raise the quota (hostvm project set) or free resources.\n" +
            "hostvm:   max_vms: project 'alpha' has 1 of 1; this VM needs 1 more.\n",
            run.Errors.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void VmCreateSendsTheProjectAndListShowsIt()
    {
        var daemon = new FakeDaemon()
            .Answer("POST", "/v1/vms", HttpStatusCode.Created, Vm)
            .Answer("GET", "/v1/vms", HttpStatusCode.OK, $"[{Vm}]");
        Assert.Equal(0, CliRun.Start(daemon, "vm", "create", "web1", "--image", "alpine", "--project", "alpha").ExitCode);
        daemon.Single("POST").AssertJson("""{"name": "web1", "image": "alpine", "project": "alpha"}""");
        var list = CliRun.Start(daemon, "vm", "list");
        var lines = list.Output.Split('\n');
        Assert.Contains(lines, l => l.Contains("NAME") && l.Contains("PROJECT"));
        Assert.Contains(lines, l => l.Contains("web1") && l.Contains("alpha"));
    }

    [Fact]
    public void NetworkCreateSendsTheProjectAndListShowsIt()
    {
        const string Lan = """{"name": "lan", "project": "alpha", "nat": false, "vms": [], "created_at": "2026-01-01T10:00:00Z"}""";
        var daemon = new FakeDaemon()
            .Answer("POST", "/v1/networks", HttpStatusCode.Created, Lan)
            .Answer("GET", "/v1/networks", HttpStatusCode.OK, $"[{Lan}]");
        Assert.Equal(0, CliRun.Start(daemon, "network", "create", "lan", "--project", "alpha").ExitCode);
        daemon.Single("POST").AssertJson("""{"name": "lan", "nat": false, "project": "alpha"}""");
        var lines = CliRun.Start(daemon, "network", "list").Output.Split('\n');
        Assert.Contains(lines, l => l.Contains("NAME") && l.Contains("PROJECT"));
        Assert.Contains(lines, l => l.Contains("lan") && l.Contains("alpha"));
    }

    [Fact]
    public void ImageListShowsTheProject()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/images", HttpStatusCode.OK,
            """[{"name": "alpine", "project": "alpha", "boot_args": "", "description": "", "kernel_bytes": 6, "created_at": "2026-01-01T10:00:00Z"}]""");
        var lines = CliRun.Start(daemon, "image", "list").Output.Split('\n');
        Assert.Contains(lines, l => l.Contains("NAME") && l.Contains("PROJECT"));
        Assert.Contains(lines, l => l.Contains("alpine") && l.Contains("alpha"));
    }
}
