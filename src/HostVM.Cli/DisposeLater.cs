namespace HostVM.Cli;

/// <summary>Runs an action at the end of a using scope (for resources created later inside it).</summary>
public sealed class DisposeLater(Action action) : IDisposable
{
    public void Dispose() => action();
}
