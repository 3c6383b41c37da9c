namespace HostVM.Integration.Tests;

/// <summary>One `hostvm serve` for a test class (its tests share it and clean up what they create).</summary>
public sealed class DaemonFixture : IAsyncLifetime
{
    private DaemonProcess? _daemon;

    public DaemonProcess Daemon => _daemon ?? throw new InvalidOperationException("the daemon has not started");

    public async Task InitializeAsync() => _daemon = await DaemonProcess.StartAsync();

    public Task DisposeAsync()
    {
        _daemon?.Dispose();
        return Task.CompletedTask;
    }
}
