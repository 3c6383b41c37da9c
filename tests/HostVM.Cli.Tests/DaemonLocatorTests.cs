namespace HostVM.Cli.Tests;

/// <summary>Where the CLI looks for the daemon: --host, HOSTVM_HOST, cli.json, the daemon's socket, the default port.</summary>
public sealed class DaemonLocatorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-locator-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private CliEnvironment Environment(Dictionary<string, string> variables)
    {
        variables.TryAdd("XDG_CONFIG_HOME", Path.Combine(_dir, "config"));
        variables.TryAdd("XDG_RUNTIME_DIR", Path.Combine(_dir, "run"));
        variables.TryAdd("USER", "hostvm-test-nobody");
        return CliRun.TestEnvironment(TextWriter.Null, TextWriter.Null, variables);
    }

    private void WriteConfig(string json)
    {
        Directory.CreateDirectory(Path.Combine(_dir, "config", "hostvm"));
        File.WriteAllText(Path.Combine(_dir, "config", "hostvm", "cli.json"), json);
    }

    private string MakeSocket()
    {
        string path = Path.Combine(_dir, "run", "hostvm", "hostvm.sock");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, string.Empty); // existence is what counts
        return path;
    }

    [Fact]
    public void TheDefaultIsTheTcpPort()
    {
        var address = DaemonLocator.Locate(null, Environment([]));
        Assert.Equal("https://127.0.0.1:8006", address.Text);
        Assert.Equal(new Uri("https://127.0.0.1:8006/"), address.BaseUri);
        Assert.Null(address.SocketPath);
    }

    [Fact]
    public void TheDaemonsSocketWinsOverTheDefaultPort()
    {
        string socket = MakeSocket();
        var address = DaemonLocator.Locate(null, Environment([]));
        Assert.Equal(socket, address.SocketPath);
        Assert.Equal("unix:" + socket, address.Text);
    }

    [Fact]
    public void ASocketOrSocketDirectoryOfAnotherUserIsRefusedNotConnectedTo()
    {
        Assert.SkipUnless(System.Environment.IsPrivilegedProcess, "giving a file to another user (nobody) needs root, as CI has");
        string socket = MakeSocket();
        Chown(socket, 65534);
        var e = Assert.Throws<UsageException>(() => DaemonLocator.Locate(null, Environment([])));
        Assert.Contains($"the daemon's socket {socket}", e.Message, StringComparison.Ordinal);
        Assert.Contains("uid 65534", e.Message, StringComparison.Ordinal);

        Chown(socket, 0);
        Chown(Path.GetDirectoryName(socket)!, 65534);
        e = Assert.Throws<UsageException>(() => DaemonLocator.Resolve($"unix:{socket}", "hvt_secret", null, Environment([])));
        Assert.Contains("the directory of the daemon's socket", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASocketDirectoryThatIsASymbolicLinkIsRefused()
    {
        string elsewhere = Directory.CreateDirectory(Path.Combine(_dir, "elsewhere")).FullName;
        File.WriteAllText(Path.Combine(elsewhere, "hostvm.sock"), string.Empty);
        Directory.CreateDirectory(Path.Combine(_dir, "run"));
        File.CreateSymbolicLink(Path.Combine(_dir, "run", "hostvm"), elsewhere);
        var e = Assert.Throws<UsageException>(() => DaemonLocator.Locate(null, Environment([])));
        Assert.Contains("is a symbolic link", e.Message, StringComparison.Ordinal);
    }

    private static void Chown(string path, int user)
    {
        using var chown = System.Diagnostics.Process.Start("chown", [$"{user}:{user}", path]);
        chown.WaitForExit();
        Assert.Equal(0, chown.ExitCode);
    }

    [Fact]
    public void TheConfigFileWinsOverTheSocket()
    {
        MakeSocket();
        WriteConfig("""{"host": "http://10.0.0.5:8006"}""");
        var address = DaemonLocator.Locate(null, Environment([]));
        Assert.Equal("http://10.0.0.5:8006", address.Text);
        Assert.EndsWith("cli.json", address.Source);
    }

    [Fact]
    public void TheEnvironmentWinsOverTheConfigFile()
    {
        WriteConfig("""{"host": "http://10.0.0.5:8006"}""");
        var address = DaemonLocator.Locate(null, Environment(new() { ["HOSTVM_HOST"] = "unix:/tmp/d.sock" }));
        Assert.Equal("/tmp/d.sock", address.SocketPath);
        Assert.Equal("HOSTVM_HOST", address.Source);
    }

    [Fact]
    public void TheOptionWinsOverEverything()
    {
        WriteConfig("""{"host": "http://10.0.0.5:8006"}""");
        var address = DaemonLocator.Locate("box:9000", Environment(new() { ["HOSTVM_HOST"] = "unix:/tmp/d.sock" }));
        Assert.Equal(new Uri("https://box:9000/"), address.BaseUri);
        Assert.Equal("--host", address.Source);
    }

    [Fact]
    public void AConfigFileWithoutHostIsIgnored()
    {
        WriteConfig("{}");
        Assert.Equal("https://127.0.0.1:8006", DaemonLocator.Locate(null, Environment([])).Text);
    }

    [Fact]
    public void ABrokenConfigFileNamesItself()
    {
        WriteConfig("{host: ");
        var e = Assert.Throws<UsageException>(() => DaemonLocator.Locate(null, Environment([])));
        Assert.Contains("cli.json: not valid JSON", e.Message);
    }

    [Fact]
    public void WithoutXdgTheSocketIsWhereTheDaemonPutsItThen()
    {
        var user = CliRun.TestEnvironment(TextWriter.Null, TextWriter.Null, new Dictionary<string, string> { ["USER"] = "alice" });
        Assert.Equal(["/tmp/hostvm-alice/hostvm.sock"], DaemonLocator.DefaultSockets(user));
        Assert.Equal(["/run/hostvm/hostvm.sock"], DaemonLocator.DefaultSockets(user with { IsRoot = true }));
        Assert.Equal(Path.Combine("/nonexistent-home", ".config", "hostvm", "cli.json"), DaemonLocator.ConfigFile(user));
    }

    private const string Pin = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

    [Fact]
    public void TokenAndFingerprintComeFromTheOptionThenTheEnvironmentThenTheFile()
    {
        WriteConfig($$"""{"host": "https://box:8006", "token": "hvt_file", "fingerprint": "{{Pin.Replace(":", "", StringComparison.Ordinal).ToLowerInvariant()}}"}""");
        var fromFile = DaemonLocator.Resolve(null, null, null, Environment([]));
        Assert.Equal(new Uri("https://box:8006/"), fromFile.Address.BaseUri);
        Assert.Equal("hvt_file", fromFile.Token);
        Assert.Equal(Pin, fromFile.Fingerprint); // written back in the canonical form

        string other = Pin.Replace("AB", "00", StringComparison.Ordinal);
        var variables = new Dictionary<string, string> { ["HOSTVM_TOKEN"] = "hvt_env", ["HOSTVM_FINGERPRINT"] = other };
        var fromEnvironment = DaemonLocator.Resolve(null, null, null, Environment(variables));
        Assert.Equal(("hvt_env", other), (fromEnvironment.Token, fromEnvironment.Fingerprint));

        var fromOptions = DaemonLocator.Resolve(null, "hvt_opt", Pin.ToLowerInvariant(), Environment(variables));
        Assert.Equal(("hvt_opt", Pin), (fromOptions.Token, fromOptions.Fingerprint));
    }

    [Fact]
    public void TheFilesTokenAndPinAreNotSentToAnotherHost()
    {
        WriteConfig($$"""{"host": "https://box:8006", "token": "hvt_file", "fingerprint": "{{Pin}}"}""");
        var elsewhere = DaemonLocator.Resolve("https://elsewhere:8006", null, null, Environment([]));
        Assert.Null(elsewhere.Token);
        Assert.Null(elsewhere.Fingerprint);

        // The same daemon written another way (no scheme: https) is the file's host.
        var same = DaemonLocator.Resolve("box:8006", null, null, Environment([]));
        Assert.Equal("hvt_file", same.Token);
    }

    [Theory]
    [InlineData("zz")]
    [InlineData("AB:CD")]
    [InlineData("AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:8G")]
    public void AMalformedFingerprintIsABadCommandLine(string fingerprint)
    {
        var e = Assert.Throws<UsageException>(() => DaemonLocator.Resolve(null, null, fingerprint, Environment([])));
        Assert.Contains($"--fingerprint {fingerprint}: not a SHA-256 fingerprint", e.Message);
    }

    [Fact]
    public void ATokenWithALineBreakIsRefused()
    {
        var e = Assert.Throws<UsageException>(() => DaemonLocator.Resolve(null, null, null, Environment(new() { ["HOSTVM_TOKEN"] = "hvt_a\r\nX-Evil: 1" })));
        Assert.Contains("HOSTVM_TOKEN", e.Message);
    }
}
