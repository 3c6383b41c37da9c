using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using HostVM.Host.Api;
using Microsoft.Data.Sqlite;

namespace HostVM.Host.Inventory;

/// <summary>
/// The daemon's truth about images, VMs, networks and events: one SQLite file in WAL mode. Each object
/// is a JSON document in its table (indexed by name); every write is one transaction, committed
/// (synchronous=FULL) before the call returns, so an acknowledged change survives a crash.
/// </summary>
public sealed class InventoryStore : IDisposable
{
    public const int MaxEvents = 100_000;

    private readonly SqliteConnection _db;
    private readonly Lock _lock = new();
    private readonly List<EventRecord> _written = [];

    public InventoryStore(string path)
    {
        Path = path;
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _db.Open();
        Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;");
        Execute("""
            CREATE TABLE IF NOT EXISTS images (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS networks (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS vms (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, vm TEXT, type TEXT NOT NULL, message TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS events_vm ON events (vm, id);
            """);
    }

    public string Path { get; }

    /// <summary>
    /// Each event once its transaction has committed, in id order (raised under the store's lock, so a
    /// handler must not block or write to the store: hand the event on, as <see cref="EventBroadcaster"/> does).
    /// </summary>
    public event Action<EventRecord>? EventWritten;

    private static HostJsonContext Json => HostJsonContext.Default;

    public IReadOnlyList<ImageRecord> Images() => ReadAll("SELECT doc FROM images ORDER BY name", Json.ImageRecord);

    public ImageRecord? Image(string name) => ReadOne("SELECT doc FROM images WHERE name = $k", name, Json.ImageRecord);

    public void PutImage(ImageRecord image) =>
        Write(c => Command(c, "INSERT OR REPLACE INTO images (name, doc) VALUES ($n, $d)", ("$n", image.Name), ("$d", Serialize(image, Json.ImageRecord))));

    public void DeleteImage(string name) => Write(c => Command(c, "DELETE FROM images WHERE name = $n", ("$n", name)));

    public IReadOnlyList<NetworkRecord> Networks() => ReadAll("SELECT doc FROM networks ORDER BY name", Json.NetworkRecord);

    public NetworkRecord? Network(string name) => ReadOne("SELECT doc FROM networks WHERE name = $k", name, Json.NetworkRecord);

    public void PutNetwork(NetworkRecord network, string? eventMessage = null) => Write(c =>
    {
        Command(c, "INSERT OR REPLACE INTO networks (name, doc) VALUES ($n, $d)", ("$n", network.Name), ("$d", Serialize(network, Json.NetworkRecord)));
        if (eventMessage is not null)
        {
            InsertEvent(null, "network", eventMessage);
        }
    });

    public void DeleteNetwork(string name) => Write(c =>
    {
        Command(c, "DELETE FROM networks WHERE name = $n", ("$n", name));
        InsertEvent(null, "network", $"network {name} deleted");
    });

    public IReadOnlyList<VmRecord> Vms() => ReadAll("SELECT doc FROM vms ORDER BY name", Json.VmRecord);

    /// <summary>A VM by name or id.</summary>
    public VmRecord? Vm(string nameOrId) =>
        ReadOne("SELECT doc FROM vms WHERE name = $k OR id = $k", nameOrId, Json.VmRecord);

    /// <summary>Writes the VM and, in the same transaction, an event about it.</summary>
    public void PutVm(VmRecord vm, string eventType, string eventMessage) => Write(c =>
    {
        // An upsert on the id alone: a second VM with a taken name fails (OR REPLACE would delete the first).
        Command(c, "INSERT INTO vms (id, name, doc) VALUES ($i, $n, $d) ON CONFLICT(id) DO UPDATE SET name = excluded.name, doc = excluded.doc", ("$i", vm.Id), ("$n", vm.Name), ("$d", Serialize(vm, Json.VmRecord)));
        InsertEvent(vm.Name, eventType, eventMessage);
    });

    public void DeleteVm(VmRecord vm, string eventMessage) => Write(c =>
    {
        Command(c, "DELETE FROM vms WHERE id = $i", ("$i", vm.Id));
        InsertEvent(vm.Name, "deleted", eventMessage);
    });

    public void AddEvent(string? vm, string type, string message) => Write(c => InsertEvent(vm, type, message));

    /// <summary>The events after <paramref name="afterId"/>, oldest first, optionally of one VM.</summary>
    public IReadOnlyList<EventRecord> EventsAfter(long afterId, string? vm, int limit)
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = vm is null
                ? "SELECT id, at, vm, type, message FROM events WHERE id > $a ORDER BY id LIMIT $l"
                : "SELECT id, at, vm, type, message FROM events WHERE id > $a AND vm = $v ORDER BY id LIMIT $l";
            cmd.Parameters.AddWithValue("$a", afterId);
            return ReadEvents(cmd, vm, limit);
        }
    }

    /// <summary>The newest events first, optionally of one VM.</summary>
    public IReadOnlyList<EventRecord> Events(string? vm, int limit)
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = vm is null
                ? "SELECT id, at, vm, type, message FROM events ORDER BY id DESC LIMIT $l"
                : "SELECT id, at, vm, type, message FROM events WHERE vm = $v ORDER BY id DESC LIMIT $l";
            return ReadEvents(cmd, vm, limit);
        }
    }

    private static List<EventRecord> ReadEvents(SqliteCommand cmd, string? vm, int limit)
    {
        cmd.Parameters.AddWithValue("$l", limit);
        if (vm is not null)
        {
            cmd.Parameters.AddWithValue("$v", vm);
        }

        using var reader = cmd.ExecuteReader();
        var list = new List<EventRecord>();
        while (reader.Read())
        {
            list.Add(new EventRecord(reader.GetInt64(0), DateTimeOffset.Parse(reader.GetString(1), System.Globalization.CultureInfo.InvariantCulture),
                reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3), reader.GetString(4)));
        }

        return list;
    }

    /// <summary>Inserts an event in the open transaction; it is announced (<see cref="EventWritten"/>) once that commits.</summary>
    private void InsertEvent(string? vm, string type, string message)
    {
        var at = DateTimeOffset.UtcNow;
        Command(_db, "INSERT INTO events (at, vm, type, message) VALUES ($a, $v, $t, $m)",
            ("$a", at.ToString("O", System.Globalization.CultureInfo.InvariantCulture)), ("$v", vm), ("$t", type), ("$m", message));
        using (var id = _db.CreateCommand())
        {
            id.CommandText = "SELECT last_insert_rowid()";
            _written.Add(new EventRecord((long)id.ExecuteScalar()!, at, vm, type, message));
        }

        Command(_db, $"DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - {MaxEvents}");
    }

    private void Execute(string sql)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private static void Command(SqliteConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        cmd.ExecuteNonQuery();
    }

    private void Write(Action<SqliteConnection> change)
    {
        lock (_lock)
        {
            _written.Clear();
            using (var tx = _db.BeginTransaction())
            {
                change(_db);
                tx.Commit();
            }

            foreach (var e in _written)
            {
                EventWritten?.Invoke(e);
            }

            _written.Clear();
        }
    }

    private List<T> ReadAll<T>(string sql, JsonTypeInfo<T> type)
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = sql;
            using var reader = cmd.ExecuteReader();
            var list = new List<T>();
            while (reader.Read())
            {
                list.Add(JsonSerializer.Deserialize(reader.GetString(0), type)!);
            }

            return list;
        }
    }

    private T? ReadOne<T>(string sql, string key, JsonTypeInfo<T> type)
        where T : class
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = sql;
            cmd.Parameters.AddWithValue("$k", key);
            return cmd.ExecuteScalar() is string doc ? JsonSerializer.Deserialize(doc, type) : null;
        }
    }

    private static string Serialize<T>(T value, JsonTypeInfo<T> type) => JsonSerializer.Serialize(value, type);

    public void Dispose()
    {
        lock (_lock)
        {
            _db.Dispose();
        }
    }
}
