using HostVM.Host.Inventory;

namespace HostVM.Host.Security;

/// <summary>
/// The open console WebSockets and event streams, by the token that opened them. A token is checked only when
/// a request starts, and these requests last for hours: so a revoked token's sessions are ended at once (from
/// <see cref="TokenService.Revoked"/>), and every <see cref="CheckInterval"/> the sessions of tokens that expired
/// (or were revoked by anything that did not say so) are ended, so none outlives its token by a second.
/// Each session may hold megabytes of queued output, so their number is capped per token and per VM.
/// The owner on the local socket has no token: nothing ends its sessions, and only the per-VM cap counts them.
/// </summary>
public sealed class SessionRegistry : IDisposable
{
    public const int DefaultMaxPerToken = 8;

    public const int DefaultMaxPerVm = 32;

    /// <summary>How often expiry is checked: well under a second, so a session ends within one of its token's expiry.</summary>
    public static readonly TimeSpan CheckInterval = TimeSpan.FromMilliseconds(250);

    private readonly TokenService _tokens;
    private readonly TimeProvider _time;
    private readonly int _maxPerToken;
    private readonly int _maxPerVm;
    private readonly Lock _lock = new();
    private readonly List<SessionLease> _open = [];
    private readonly ITimer _timer;

    public SessionRegistry(TokenService tokens, int maxPerToken, int maxPerVm, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        _tokens = tokens;
        _time = time ?? TimeProvider.System;
        _maxPerToken = maxPerToken;
        _maxPerVm = maxPerVm;
        _tokens.Revoked += OnRevoked;
        _timer = _time.CreateTimer(_ => EndLapsed(), null, CheckInterval, CheckInterval);
    }

    /// <summary>Sessions open now (for tests and diagnostics).</summary>
    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _open.Count;
            }
        }
    }

    /// <summary>
    /// Counts a new session of <paramref name="caller"/> (on <paramref name="vm"/>'s console, or an event stream if
    /// null); null with <paramref name="refusal"/> (what to do) when a cap is reached. A token revoked or expired
    /// since the request was let in gets a lease that has ended already.
    /// </summary>
    public SessionLease? TryOpen(Caller caller, VmRecord? vm, out string refusal)
    {
        ArgumentNullException.ThrowIfNull(caller);
        SessionLease lease;
        string? lapsed;
        lock (_lock)
        {
            bool isToken = caller.Who != Caller.LocalWho;
            if (isToken && _open.Count(s => s.Who == caller.Who) >= _maxPerToken)
            {
                refusal = $"Token {caller.Who} has {_maxPerToken} console and event-stream sessions open, the most one token may (max_sessions_per_token): close one (detach a console, end an event stream) or use another token.";
                return null;
            }

            if (vm is not null && _open.Count(s => s.VmId == vm.Id) >= _maxPerVm)
            {
                refusal = $"VM '{vm.Name}' has {_maxPerVm} console sessions open, the most one VM may (max_sessions_per_vm): detach one before attaching another.";
                return null;
            }

            lease = new SessionLease(this, caller.Who, vm?.Id);
            _open.Add(lease);
            // Checked under the lock, after the lease is counted: a revocation from now on finds it, one before is seen here.
            lapsed = isToken ? Lapsed(caller.Who) : null;
        }

        if (lapsed is not null)
        {
            lease.End(lapsed);
        }

        refusal = string.Empty;
        return lease;
    }

    internal void Remove(SessionLease lease)
    {
        lock (_lock)
        {
            _open.Remove(lease);
        }
    }

    /// <summary>
    /// Ends the sessions of tokens revoked or expired (of <paramref name="tokenId"/> only, if given): what the timer
    /// and a revocation run (tests call it to skip the wait).
    /// </summary>
    internal void EndLapsed(string? tokenId = null)
    {
        List<(SessionLease Lease, string Reason)> ending = [];
        lock (_lock)
        {
            foreach (var group in _open.Where(s => s.Who != Caller.LocalWho && (tokenId is null || s.Who == tokenId)).GroupBy(s => s.Who))
            {
                if (Lapsed(group.Key) is { } reason)
                {
                    ending.AddRange(group.Select(s => (s, reason)));
                }
            }
        }

        // Outside the lock: each session's closing runs here.
        foreach (var (lease, reason) in ending)
        {
            lease.End(reason);
        }
    }

    /// <summary>Why a token no longer opens anything (kept under 123 bytes, the most a WebSocket close reason holds); null while it is valid.</summary>
    private string? Lapsed(string tokenId) => _tokens.Get(tokenId) switch
    {
        null => $"token {tokenId} no longer exists; attach again with a valid token",
        { RevokedAt: not null } => $"token {tokenId} was revoked; attach again with a valid token",
        { ExpiresAt: { } expires } when expires <= _time.GetUtcNow() => $"token {tokenId} expired; attach again with a valid token",
        _ => null,
    };

    private void OnRevoked(TokenRecord token) => EndLapsed(token.Id);

    public void Dispose()
    {
        _tokens.Revoked -= OnRevoked;
        _timer.Dispose();
    }
}
