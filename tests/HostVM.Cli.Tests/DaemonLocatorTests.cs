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
        Assert.Equal("http://127.0.0.1:8006", address.Text);
        Assert.Equal(new Uri("http://127.0.0.1:8006/"), address.BaseUri);
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
        Assert.Equal(new Uri("http://box:9000/"), address.BaseUri);
        Assert.Equal("--host", address.Source);
    }

    [Fact]
    public void AConfigFileWithoutHostIsIgnored()
    {
        WriteConfig("{}");
        Assert.Equal("http://127.0.0.1:8006", DaemonLocator.Locate(null, Environment([])).Text);
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
}
