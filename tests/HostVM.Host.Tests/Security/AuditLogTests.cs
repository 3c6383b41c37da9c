using HostVM.Host.Inventory;
using HostVM.Host.Security;
using Microsoft.Extensions.Time.Testing;

namespace HostVM.Host.Tests.Security;

/// <summary>
/// The audit log under a flood of refusals without a token (security review F4): every call is accounted
/// for, in a bounded number of rows; calls made with a token are each written; the table keeps its bound.
/// </summary>
public sealed class AuditLogTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-audit-").FullName;
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private AuditRecord Call(string who, string remote, int status, string path = "/v1/networks") =>
        new(0, _time.GetUtcNow(), who, who == "anonymous" ? null : "admin", null, remote, "POST", path, "network.create", null, status, null);

    [Fact]
    public void TenThousandRefusalsFromOneAddressAreAFewRowsThatCountThemAll()
    {
        using var store = new InventoryStore(Path.Combine(_dir, "hostvm.db"));
        using var audit = new AuditLog(store, HostSettings.DefaultAuditMaxRows, time: _time);
        for (int i = 0; i < 10_000; i++)
        {
            audit.Add(Call("anonymous", "192.0.2.7", i < 10 ? 401 : 429), authenticated: false);
            audit.Add(Call("anonymous", "192.0.2.8", 401), authenticated: false);
        }

        audit.Add(Call("ac7a11516545dfa3", "192.0.2.9", 201), authenticated: true);
        audit.Flush();

        var rows = store.Audit(null, null, null, null, null, 100_000);
        Assert.True(rows.Count <= (2 * AuditLog.EntriesPerAddress) + 3 + 1, $"{rows.Count} rows");
        Assert.Equal(10_000, rows.Where(r => r.Remote == "192.0.2.7").Sum(r => r.Count));
        Assert.Equal(10_000, rows.Where(r => r.Remote == "192.0.2.8").Sum(r => r.Count));
        Assert.Equal(9_990, rows.Where(r => r is { Remote: "192.0.2.7", Status: 429 }).Sum(r => r.Count));
        var counted = Assert.Single(rows, r => r is { Remote: "192.0.2.8", Method: "*" });
        Assert.Equal(10_000 - AuditLog.EntriesPerAddress, counted.Count);
        Assert.Contains("counted, not recorded one by one", counted.Detail, StringComparison.Ordinal);
        Assert.Single(rows, r => r.Who == "ac7a11516545dfa3");

        // The next minute writes one by one again; the counted row of the last minute keeps its count.
        _time.Advance(TimeSpan.FromMinutes(1));
        audit.Add(Call("anonymous", "192.0.2.8", 401, "/v1/vms"), authenticated: false);
        audit.Flush();
        rows = store.Audit(null, null, null, null, null, 100_000);
        Assert.Equal("/v1/vms", rows[0].Path);
        Assert.Equal(10_001, rows.Where(r => r.Remote == "192.0.2.8").Sum(r => r.Count));
    }

    [Fact]
    public void ARowTheInventoryRefusesIsWrittenLaterInOrderNotLost()
    {
        string db = Path.Combine(_dir, "hostvm.db");
        using var store = new InventoryStore(db);
        using var audit = new AuditLog(store, HostSettings.DefaultAuditMaxRows, time: _time);
        using (var other = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Pooling=False"))
        {
            // Another process holds the write lock (as a full disk would fail the write): the call goes on, its row waits.
            other.Open();
            using var begin = other.CreateCommand();
            begin.CommandText = "BEGIN EXCLUSIVE";
            begin.ExecuteNonQuery();
            audit.Add(Call("first", "192.0.2.1", 500, "/v1/vms/a/start"), authenticated: true);
        }

        Assert.Empty(store.Audit(null, null, null, null, null, 10));
        audit.Add(Call("second", "192.0.2.1", 200, "/v1/vms/a/start"), authenticated: true);
        var rows = store.Audit(null, null, null, null, null, 10);
        Assert.Equal(["second", "first"], rows.Select(r => r.Who)); // newest first: written in the order of the calls
    }

    [Fact]
    public void AFloodFromManyAddressesIsBoundedToo()
    {
        using var store = new InventoryStore(Path.Combine(_dir, "hostvm.db"));
        using var audit = new AuditLog(store, HostSettings.DefaultAuditMaxRows, time: _time);
        for (int i = 0; i < 20_000; i++)
        {
            audit.Add(Call("anonymous", $"2001:db8::{i:x}", 401), authenticated: false);
        }

        audit.Flush();
        var rows = store.Audit(null, null, null, null, null, 100_000);
        Assert.True(rows.Count <= AuditLog.EntriesPerMinute + AuditLog.MaxAddresses + 1, $"{rows.Count} rows");
        Assert.Equal(20_000, rows.Sum(r => r.Count));
    }

    [Fact]
    public void TheTableKeepsItsBoundDroppingUnauthenticatedEntriesFirst()
    {
        using var store = new InventoryStore(Path.Combine(_dir, "hostvm.db"));
        for (int i = 0; i < 30; i++)
        {
            store.AddAudit(Call(i % 2 == 0 ? "anonymous" : "ac7a11516545dfa3", "192.0.2.7", 401, $"/v1/vms/{i}"));
        }

        Assert.Equal(5, store.TrimAudit(25));
        var rows = store.Audit(null, null, null, null, null, 1000);
        Assert.Equal(25, rows.Count);
        Assert.Equal(15, rows.Count(r => r.Who != "anonymous")); // every authenticated entry stayed
        Assert.Equal(20, store.TrimAudit(5));
        Assert.Equal(["/v1/vms/29", "/v1/vms/27", "/v1/vms/25", "/v1/vms/23", "/v1/vms/21"], store.Audit(null, null, null, null, null, 1000).Select(r => r.Path));
    }

    [Fact]
    public void AFlushTimerWritesCountsAndTrimsOnItsOwn()
    {
        using var store = new InventoryStore(Path.Combine(_dir, "hostvm.db"));
        using var audit = new AuditLog(store, 1000, TimeSpan.FromSeconds(5), _time);
        for (int i = 0; i < 2000; i++)
        {
            store.AddAudit(Call("ac7a11516545dfa3", "192.0.2.9", 200));
        }

        for (int i = 0; i < 100; i++)
        {
            audit.Add(Call("anonymous", "192.0.2.7", 401), authenticated: false);
        }

        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.Contains(store.Audit(null, null, null, null, null, 10), r => r.Method == "*" && r.Count == 100 - AuditLog.EntriesPerAddress);
        _time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1000, store.Audit(null, null, null, null, null, 10_000).Count);
    }
}
