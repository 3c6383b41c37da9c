namespace HostVM.Host.Security;

/// <summary>
/// One open long-lived session (a console WebSocket, an event stream) as <see cref="SessionRegistry"/> counts it.
/// <see cref="Ended"/> fires when the session must stop because its token was revoked or expired; the session
/// then closes itself, saying <see cref="Reason"/>. Disposing it (the session is over) frees its place.
/// </summary>
public sealed class SessionLease : IDisposable
{
    private readonly SessionRegistry _registry;
    private readonly CancellationTokenSource _ended = new();
    private readonly Lock _gate = new();
    private bool _disposed;

    internal SessionLease(SessionRegistry registry, string who, string? vmId)
    {
        _registry = registry;
        Who = who;
        VmId = vmId;
        Ended = _ended.Token; // kept: the token stays usable by the session after the lease is disposed
    }

    /// <summary>The caller that opened it: a token id, or <see cref="Caller.LocalWho"/>.</summary>
    public string Who { get; }

    /// <summary>The VM whose console it is; null for an event stream.</summary>
    public string? VmId { get; }

    public CancellationToken Ended { get; }

    /// <summary>Why it was ended (set before <see cref="Ended"/> fires; short enough for a WebSocket close frame).</summary>
    public string? Reason { get; private set; }

    /// <summary>Ends the session; the first reason wins, and a session already over is left alone.</summary>
    internal void End(string reason)
    {
        lock (_gate)
        {
            if (_disposed || Reason is not null)
            {
                return;
            }

            Reason = reason;
        }

        try
        {
            _ended.Cancel(); // outside the lock: the session's own closing runs here
        }
        catch (ObjectDisposedException)
        {
            // The session ended on its own in between: nothing is left to close.
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _registry.Remove(this);
        _ended.Dispose();
    }
}
