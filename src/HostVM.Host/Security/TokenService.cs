using HostVM.Host.Inventory;

namespace HostVM.Host.Security;

/// <summary>
/// Issues, lists, revokes and checks API tokens. The inventory is the truth; the daemon (its only writer)
/// keeps a copy in memory so checking a token costs no disk read.
/// </summary>
public sealed class TokenService
{
    private static readonly byte[] NoHash = new byte[32];

    private readonly InventoryStore _inventory;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, (TokenRecord Token, byte[] Hash)> _tokens;
    private readonly Lock _lock = new();

    public TokenService(InventoryStore inventory, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(inventory);
        _inventory = inventory;
        _time = time ?? TimeProvider.System;
        _tokens = inventory.Tokens().ToDictionary(t => t.Token.Id, StringComparer.Ordinal);
    }

    /// <summary>Raised after a token is revoked (not under the service's lock), so what it opened can be closed at once.</summary>
    public event Action<TokenRecord>? Revoked;

    public bool IsEmpty
    {
        get
        {
            lock (_lock)
            {
                return _tokens.Count == 0;
            }
        }
    }

    /// <summary>Makes a token; the returned string is the only time its secret exists outside the caller's hands.</summary>
    public (TokenRecord Record, string Token) Create(string role, string? project, DateTimeOffset? expiresAt, string description, string createdBy)
    {
        var (id, token, hash) = ApiTokens.Create();
        var record = new TokenRecord
        {
            Id = id,
            Role = role,
            Project = project,
            Description = description,
            CreatedAt = _time.GetUtcNow(),
            CreatedBy = createdBy,
            ExpiresAt = expiresAt,
        };
        lock (_lock)
        {
            _inventory.PutToken(record, hash);
            _tokens[id] = (record, hash);
        }

        return (record, token);
    }

    public IReadOnlyList<TokenRecord> List()
    {
        lock (_lock)
        {
            return [.. _tokens.Values.Select(t => t.Token).OrderBy(t => t.CreatedAt)];
        }
    }

    public TokenRecord? Get(string id)
    {
        lock (_lock)
        {
            return _tokens.TryGetValue(id, out var t) ? t.Token : null;
        }
    }

    /// <summary>Revokes a token for good (kept, marked, so the audit log's references still resolve).</summary>
    public TokenRecord Revoke(string id)
    {
        TokenRecord revoked;
        lock (_lock)
        {
            var (token, hash) = _tokens[id];
            if (token.RevokedAt is not null)
            {
                return token;
            }

            revoked = token with { RevokedAt = _time.GetUtcNow() };
            _inventory.PutToken(revoked, null);
            _tokens[id] = (revoked, hash);
        }

        Revoked?.Invoke(revoked);
        return revoked;
    }

    /// <summary>Checks a presented token: the record when valid, else why not (never which part was wrong).</summary>
    public (TokenRecord? Token, string? Refusal) Authenticate(string presented)
    {
        ArgumentNullException.ThrowIfNull(presented);
        if (!ApiTokens.TryParse(presented, out string id, out string secret))
        {
            return (null, "The token is not a HostVM token (hvt_...).");
        }

        TokenRecord? token;
        byte[] hash;
        lock (_lock)
        {
            (token, hash) = _tokens.TryGetValue(id, out var found) ? found : (null, NoHash);
        }

        // The hash is compared even for an unknown id, so the answer's timing does not say which ids exist.
        bool matches = ApiTokens.Matches(secret, hash);
        if (token is null || !matches)
        {
            return (null, "The token is not valid.");
        }

        if (token.RevokedAt is { } revoked)
        {
            return (null, $"The token {token.Id} was revoked at {revoked:u}.");
        }

        if (token.ExpiresAt is { } expires && expires <= _time.GetUtcNow())
        {
            return (null, $"The token {token.Id} expired at {expires:u}.");
        }

        return (token, null);
    }
}
