using System.Net;
using System.Text.Json;

namespace HostVM.Cli.Tests;

/// <summary>`hostvm login` against the fake daemon (no TLS here: the integration tests pin a real certificate).</summary>
public sealed class LoginCommandTests : IDisposable
{
    private const string Pin = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    private const string Host = """
        {"hostname": "box", "version": "1.0.0", "data_dir": "/var/lib/hostvm",
         "capacity": {"cores": 2, "vcpus": 8, "memory_mib": 22000, "disk_mib": 51200, "cpu_overcommit": 4.0, "memory_overcommit": 1.0},
         "allocated": {"vcpus": 0, "memory_mib": 0, "disk_mib": 0}, "vms": {"total": 0, "running": 0}}
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-login-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string ConfigFile => Path.Combine(_dir, "hostvm", "cli.json");

    private Dictionary<string, string> Variables => new() { ["XDG_CONFIG_HOME"] = _dir };

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void LoginChecksTheTokenAndSavesHostTokenAndPinForTheOwnerOnly()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/host", HttpStatusCode.OK, Host);
        var run = CliRun.Start(daemon, Variables, "login", "https://box:8006", "--token", "hvt_secret", "--fingerprint", Pin.ToLowerInvariant());
        Assert.True(run.ExitCode == 0, run.Errors);
        Assert.Contains("Logged in to https://box:8006 (host box", run.Output);
        Assert.Equal("Bearer hvt_secret", daemon.Single("GET").Authorization);

        using var saved = JsonDocument.Parse(File.ReadAllText(ConfigFile));
        Assert.Equal("https://box:8006", saved.RootElement.GetProperty("host").GetString());
        Assert.Equal("hvt_secret", saved.RootElement.GetProperty("token").GetString());
        Assert.Equal(Pin, saved.RootElement.GetProperty("fingerprint").GetString());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(ConfigFile));

        // Later commands take all three from the file.
        var next = new FakeDaemon().Answer("GET", "/v1/vms", HttpStatusCode.OK, "[]");
        Assert.Equal(0, CliRun.Start(next, Variables, "vm", "list").ExitCode);
        Assert.Equal("Bearer hvt_secret", next.Single("GET").Authorization);
    }

    [Fact]
    public void ARefusedTokenSavesNothing()
    {
        var daemon = new FakeDaemon().Problem("GET", "/v1/host", HttpStatusCode.Unauthorized, """{"status": 401, "title": "Unauthorized", "detail": "the token is not valid"}""");
        var run = CliRun.Start(daemon, Variables, "login", "https://box:8006", "--token", "hvt_wrong", "--fingerprint", Pin);
        Assert.Equal(ExitCodes.Refused, run.ExitCode);
        Assert.Contains("the token is not valid", run.Errors);
        Assert.False(File.Exists(ConfigFile));
    }

    [Fact]
    public void NoTokenMeansNoAuthorizationHeader()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/vms", HttpStatusCode.OK, "[]");
        Assert.Equal(0, CliRun.Start(daemon, Variables, "--host", "https://box:8006", "vm", "list").ExitCode);
        Assert.Null(daemon.Single("GET").Authorization);
    }
}
