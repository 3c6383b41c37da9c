using HostVM.Host.Inventory;
using HostVM.Host.Security;
using HostVM.Host.Supervision;
using Microsoft.Extensions.Time.Testing;

namespace HostVM.Host.Tests.Security;

/// <summary>Long-lived sessions end with their token (revoked: at once; expired: within a check) and are capped per token and per VM.</summary>
public sealed class SessionRegistryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-sessions-").FullName;
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private readonly InventoryStore _inventory;
    private readonly TokenService _tokens;

    public SessionRegistryTests()
    {
        _inventory = new InventoryStore(Path.Combine(_dir, "hostvm.db"));
        _tokens = new TokenService(_inventory, _time);
    }

    private static VmRecord Vm(string name) => new() { Id = $"id-{name}", Name = name, Image = "i", State = VmStates.Running };

    private Caller Token(DateTimeOffset? expires = null)
    {
        var record = _tokens.Create(Roles.Viewer, null, expires, "test", "test").Record;
        return new Caller(record.Id, record.Role, null, "127.0.0.1");
    }

    [Fact]
    public void RevokingATokenEndsItsSessionsAtOnceAndNoOneElses()
    {
        using var registry = new SessionRegistry(_tokens, 8, 32, _time);
        var revoked = Token();
        var kept = Token();
        using var console = registry.TryOpen(revoked, Vm("web"), out _)!;
        using var stream = registry.TryOpen(revoked, null, out _)!;
        using var other = registry.TryOpen(kept, Vm("web"), out _)!;
        using var local = registry.TryOpen(Caller.Local, Vm("web"), out _)!;
        Assert.False(console.Ended.IsCancellationRequested);

        _tokens.Revoke(revoked.Who);

        Assert.True(console.Ended.IsCancellationRequested, "without waiting for the timer");
        Assert.True(stream.Ended.IsCancellationRequested);
        Assert.Equal($"token {revoked.Who} was revoked; attach again with a valid token", console.Reason);
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(console.Reason!) <= 123, "fits a WebSocket close frame");
        Assert.False(other.Ended.IsCancellationRequested);
        Assert.False(local.Ended.IsCancellationRequested);

        // A session the revoked token opens after all (its request was let in just before) has ended already.
        using var late = registry.TryOpen(revoked, null, out _)!;
        Assert.True(late.Ended.IsCancellationRequested);
    }

    [Fact]
    public void AnExpiredTokensSessionsEndAtTheNextCheck()
    {
        using var registry = new SessionRegistry(_tokens, 8, 32, _time);
        var expiring = Token(_time.GetUtcNow().AddSeconds(10));
        var forever = Token();
        using var session = registry.TryOpen(expiring, Vm("web"), out _)!;
        using var other = registry.TryOpen(forever, Vm("web"), out _)!;

        _time.Advance(TimeSpan.FromSeconds(9));
        Assert.False(session.Ended.IsCancellationRequested);
        _time.Advance(TimeSpan.FromSeconds(1) + SessionRegistry.CheckInterval);
        Assert.True(session.Ended.IsCancellationRequested);
        Assert.Contains("expired", session.Reason, StringComparison.Ordinal);
        Assert.False(other.Ended.IsCancellationRequested);
        Assert.True(SessionRegistry.CheckInterval < TimeSpan.FromSeconds(1), "a session outlives its token by less than a second");
    }

    [Fact]
    public void SessionsAreCappedPerTokenAndPerVmAndAClosedOneFreesItsPlace()
    {
        using var registry = new SessionRegistry(_tokens, maxPerToken: 2, maxPerVm: 3, _time);
        var a = Token();
        var b = Token();
        var first = registry.TryOpen(a, Vm("web"), out _)!;
        using var second = registry.TryOpen(a, null, out _)!;
        Assert.Null(registry.TryOpen(a, Vm("db"), out string refusal));
        Assert.Contains($"Token {a.Who} has 2 console and event-stream sessions open", refusal, StringComparison.Ordinal);
        Assert.Contains("max_sessions_per_token", refusal, StringComparison.Ordinal);

        first.Dispose();
        using var third = registry.TryOpen(a, Vm("web"), out _)!;
        Assert.Equal(2, registry.Count);

        // The VM's cap counts every caller's sessions; the owner on the local socket has no per-token cap.
        using var fourth = registry.TryOpen(b, Vm("web"), out _)!;
        using var fifth = registry.TryOpen(Caller.Local, Vm("web"), out _)!;
        Assert.Null(registry.TryOpen(b, Vm("web"), out refusal));
        Assert.Contains("VM 'web' has 3 console sessions open", refusal, StringComparison.Ordinal);
        Assert.Contains("max_sessions_per_vm", refusal, StringComparison.Ordinal);
        var locals = Enumerable.Range(0, 5).Select(_ => registry.TryOpen(Caller.Local, null, out string _)).ToList();
        Assert.All(locals, Assert.NotNull);
        locals.ForEach(l => l!.Dispose());
    }

    public void Dispose()
    {
        _inventory.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}
