namespace HostVM.Integration.Tests;

/// <summary>One `hostvm serve` for a test class (its tests share it and clean up what they create).</summary>
public sealed class DaemonFixture : IAsyncLifetime
{
    private DaemonUnderTest? _daemon;

    public DaemonUnderTest Daemon => _daemon ?? throw new InvalidOperationException("the daemon has not started");

    /// <summary>The daemon's TCP address, e.g. https://127.0.0.1:41355/ (its certificate: <see cref="DaemonUnderTest.Fingerprint"/>).</summary>
    public string Url => Daemon.Client.BaseAddress!.ToString();

    public string Socket => Path.Combine(Daemon.RuntimeDir, "hostvm.sock");

    /// <summary>An empty directory to stand for XDG_CONFIG_HOME, so a user's ~/.config/hostvm/cli.json is not read.</summary>
    public string ConfigRoot => Path.Combine(Daemon.Root, "config");

    public async ValueTask InitializeAsync() => _daemon = await DaemonUnderTest.StartAsync();

    public ValueTask DisposeAsync()
    {
        _daemon?.Dispose();
        return ValueTask.CompletedTask;
    }
}
