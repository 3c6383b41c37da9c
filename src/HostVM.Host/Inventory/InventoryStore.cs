using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using HostVM.Host.Api;
using HostVM.Host.Security;
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
        // A write that finds the file locked (by another process: one daemon flocks its data directory) waits 5 s, not the
        // provider's default 30 s on top of SQLite's busy_timeout, then fails: the caller answers 500 and nothing waits on it.
        _db = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 5 }.ToString());
        _db.Open();
        Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;");
        Execute("""
            CREATE TABLE IF NOT EXISTS images (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS networks (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS vms (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, vm TEXT, type TEXT NOT NULL, message TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS events_vm ON events (vm, id);
            CREATE TABLE IF NOT EXISTS projects (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS pools (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS volumes (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, hash BLOB NOT NULL, doc TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, who TEXT NOT NULL, role TEXT, project TEXT,
                remote TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, action TEXT NOT NULL, object TEXT, status INTEGER NOT NULL, detail TEXT);
            CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
            CREATE INDEX IF NOT EXISTS audit_object ON audit (object, id);
            CREATE INDEX IF NOT EXISTS audit_project ON audit (project, id);
            """);
        if (!HasColumn("events", "project"))
        {
            Execute("ALTER TABLE events ADD COLUMN project TEXT"); // an inventory from before projects: its objects are in "default"
        }

        if (!HasColumn("audit", "count"))
        {
            Execute("ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1"); // each row of an older inventory is one call
        }

        if (Project(ProjectRecord.Default) is null)
        {
            PutProject(new ProjectRecord { Name = ProjectRecord.Default, Description = "where objects go unless a project is named", CreatedAt = DateTimeOffset.UtcNow });
        }
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
            InsertEvent(null, "network", eventMessage, network.Project);
        }
    });

    public void DeleteNetwork(NetworkRecord network) => Write(c =>
    {
        Command(c, "DELETE FROM networks WHERE name = $n", ("$n", network.Name));
        InsertEvent(null, "network", $"network {network.Name} deleted", network.Project);
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
        InsertEvent(vm.Name, eventType, eventMessage, vm.Project);
    });

    public void DeleteVm(VmRecord vm, string eventMessage) => Write(c =>
    {
        Command(c, "DELETE FROM vms WHERE id = $i", ("$i", vm.Id));
        InsertEvent(vm.Name, "deleted", eventMessage, vm.Project);
    });

    /// <summary>An event; with a VM and no project, the project is the VM's.</summary>
    public void AddEvent(string? vm, string type, string message, string? project = null) => Write(c => InsertEvent(vm, type, message, project));

    /// <summary>The newest events first, optionally of one VM, optionally only those of one project.</summary>
    public IReadOnlyList<EventRecord> Events(string? vm, int limit, string? project = null) =>
        ReadEvents("ORDER BY id DESC", 0, vm, limit, project);

    /// <summary>The events after <paramref name="afterId"/>, oldest first, optionally of one VM and of one project.</summary>
    public IReadOnlyList<EventRecord> EventsAfter(long afterId, string? vm, int limit, string? project = null) =>
        ReadEvents("ORDER BY id", afterId, vm, limit, project);

    private List<EventRecord> ReadEvents(string order, long afterId, string? vm, int limit, string? project)
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = $"SELECT id, at, vm, type, message, project FROM events WHERE id > $a AND ($v IS NULL OR vm = $v) AND ($p IS NULL OR project = $p) {order} LIMIT $l";
            cmd.Parameters.AddWithValue("$a", afterId);
            cmd.Parameters.AddWithValue("$l", limit);
            cmd.Parameters.AddWithValue("$v", (object?)vm ?? DBNull.Value);
            cmd.Parameters.AddWithValue("$p", (object?)project ?? DBNull.Value);
            using var reader = cmd.ExecuteReader();
            var list = new List<EventRecord>();
            while (reader.Read())
            {
                list.Add(ReadEvent(reader));
            }

            return list;
        }
    }

    private static EventRecord ReadEvent(SqliteDataReader reader) =>
        new(reader.GetInt64(0), DateTimeOffset.Parse(reader.GetString(1), System.Globalization.CultureInfo.InvariantCulture),
            reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5));

    // Pools and volumes

    public IReadOnlyList<PoolRecord> Pools() => ReadAll("SELECT doc FROM pools ORDER BY name", Json.PoolRecord);

    public PoolRecord? Pool(string name) => ReadOne("SELECT doc FROM pools WHERE name = $k", name, Json.PoolRecord);

    public void PutPool(PoolRecord pool, string eventMessage) => Write(c =>
    {
        Command(c, "INSERT OR REPLACE INTO pools (name, doc) VALUES ($n, $d)", ("$n", pool.Name), ("$d", Serialize(pool, Json.PoolRecord)));
        InsertEvent(null, "pool", eventMessage);
    });

    public void DeletePool(PoolRecord pool) => Write(c =>
    {
        Command(c, "DELETE FROM pools WHERE name = $n", ("$n", pool.Name));
        InsertEvent(null, "pool", $"pool {pool.Name} deleted");
    });

    public IReadOnlyList<VolumeRecord> Volumes() => ReadAll("SELECT doc FROM volumes ORDER BY key", Json.VolumeRecord);

    /// <summary>A volume by <c>POOL/NAME</c>.</summary>
    public VolumeRecord? Volume(string key) => ReadOne("SELECT doc FROM volumes WHERE key = $k", key, Json.VolumeRecord);

    /// <summary>Writes the volume and, in the same transaction, an event about it in its project.</summary>
    public void PutVolume(VolumeRecord volume, string eventMessage) => Write(c =>
    {
        Command(c, "INSERT OR REPLACE INTO volumes (key, doc) VALUES ($k, $d)", ("$k", volume.Key), ("$d", Serialize(volume, Json.VolumeRecord)));
        InsertEvent(null, "volume", eventMessage, volume.Project);
    });

    public void DeleteVolume(VolumeRecord volume) => Write(c =>
    {
        Command(c, "DELETE FROM volumes WHERE key = $k", ("$k", volume.Key));
        InsertEvent(null, "volume", $"volume {volume.Key} deleted", volume.Project);
    });

    // Projects

    public IReadOnlyList<ProjectRecord> Projects() => ReadAll("SELECT doc FROM projects ORDER BY name", Json.ProjectRecord);

    public ProjectRecord? Project(string name) => ReadOne("SELECT doc FROM projects WHERE name = $k", name, Json.ProjectRecord);

    public void PutProject(ProjectRecord project) =>
        Write(c => Command(c, "INSERT OR REPLACE INTO projects (name, doc) VALUES ($n, $d)", ("$n", project.Name), ("$d", Serialize(project, Json.ProjectRecord))));

    public void DeleteProject(string name) => Write(c => Command(c, "DELETE FROM projects WHERE name = $n", ("$n", name)));

    // Tokens: the record as JSON beside the hash of its secret.

    public IReadOnlyList<(TokenRecord Token, byte[] Hash)> Tokens()
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = "SELECT doc, hash FROM tokens ORDER BY rowid";
            using var reader = cmd.ExecuteReader();
            var list = new List<(TokenRecord, byte[])>();
            while (reader.Read())
            {
                list.Add((JsonSerializer.Deserialize(reader.GetString(0), Json.TokenRecord)!, (byte[])reader.GetValue(1)));
            }

            return list;
        }
    }

    /// <summary>Adds a token with the hash of its secret, or (hash null) updates an existing one's record.</summary>
    public void PutToken(TokenRecord token, byte[]? hash) => Write(c =>
    {
        if (hash is null)
        {
            Command(c, "UPDATE tokens SET doc = $d WHERE id = $i", ("$i", token.Id), ("$d", Serialize(token, Json.TokenRecord)));
        }
        else
        {
            Command(c, "INSERT INTO tokens (id, hash, doc) VALUES ($i, $h, $d)", ("$i", token.Id), ("$h", hash), ("$d", Serialize(token, Json.TokenRecord)));
        }
    });

    // Audit

    /// <summary>Writes an audit entry; returns its id.</summary>
    public long AddAudit(AuditRecord entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        long id = 0;
        Write(c =>
        {
            Command(c,
                "INSERT INTO audit (at, who, role, project, remote, method, path, action, object, status, detail, count) VALUES ($a, $w, $r, $p, $x, $m, $u, $c, $o, $s, $d, $n)",
                ("$a", Timestamp(entry.At)), ("$w", entry.Who), ("$r", entry.Role), ("$p", entry.Project), ("$x", entry.Remote), ("$m", entry.Method),
                ("$u", entry.Path), ("$c", entry.Action), ("$o", entry.Object), ("$s", entry.Status), ("$d", entry.Detail), ("$n", entry.Count));
            using var last = c.CreateCommand();
            last.CommandText = "SELECT last_insert_rowid()";
            id = (long)last.ExecuteScalar()!;
        });
        return id;
    }

    /// <summary>Sets the count and detail of an entry that stands for many calls; false if it is gone (trimmed).</summary>
    public bool UpdateAuditCount(long id, int count, string detail)
    {
        int changed = 0;
        Write(c =>
        {
            using var cmd = c.CreateCommand();
            cmd.CommandText = "UPDATE audit SET count = $n, detail = $d WHERE id = $i";
            cmd.Parameters.AddWithValue("$n", count);
            cmd.Parameters.AddWithValue("$d", detail);
            cmd.Parameters.AddWithValue("$i", id);
            changed = cmd.ExecuteNonQuery();
        });
        return changed > 0;
    }

    /// <summary>
    /// Keeps at most <paramref name="maxRows"/> audit entries. The oldest entries of unauthenticated callers go
    /// first, then the oldest of the rest: a flood of refusals must not push out the record of what tokens did.
    /// Returns how many were deleted.
    /// </summary>
    public int TrimAudit(long maxRows)
    {
        int deleted = 0;
        Write(c =>
        {
            foreach (string only in new[] { "WHERE who = 'anonymous'", string.Empty })
            {
                using var cmd = c.CreateCommand();
                cmd.CommandText = $"DELETE FROM audit WHERE id IN (SELECT id FROM audit {only} ORDER BY id LIMIT MAX(0, (SELECT COUNT(*) FROM audit) - $max))";
                cmd.Parameters.AddWithValue("$max", maxRows);
                deleted += cmd.ExecuteNonQuery();
            }
        });
        return deleted;
    }

    /// <summary>Audit entries, newest first, filtered by time (inclusive), project, object ("vm/NAME") and caller.</summary>
    public IReadOnlyList<AuditRecord> Audit(DateTimeOffset? since, DateTimeOffset? until, string? project, string? obj, string? who, int limit)
    {
        lock (_lock)
        {
            using var cmd = _db.CreateCommand();
            cmd.CommandText = """
                SELECT id, at, who, role, project, remote, method, path, action, object, status, detail, count FROM audit
                WHERE ($since IS NULL OR at >= $since) AND ($until IS NULL OR at <= $until) AND ($p IS NULL OR project = $p)
                  AND ($o IS NULL OR object = $o) AND ($w IS NULL OR who = $w)
                ORDER BY id DESC LIMIT $l
                """;
            cmd.Parameters.AddWithValue("$since", since is { } s ? Timestamp(s) : DBNull.Value);
            cmd.Parameters.AddWithValue("$until", until is { } u ? Timestamp(u) : DBNull.Value);
            cmd.Parameters.AddWithValue("$p", (object?)project ?? DBNull.Value);
            cmd.Parameters.AddWithValue("$o", (object?)obj ?? DBNull.Value);
            cmd.Parameters.AddWithValue("$w", (object?)who ?? DBNull.Value);
            cmd.Parameters.AddWithValue("$l", limit);
            using var r = cmd.ExecuteReader();
            var list = new List<AuditRecord>();
            string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
            while (r.Read())
            {
                list.Add(new AuditRecord(r.GetInt64(0), DateTimeOffset.Parse(r.GetString(1), System.Globalization.CultureInfo.InvariantCulture), r.GetString(2), Text(3), Text(4),
                    r.GetString(5), r.GetString(6), r.GetString(7), r.GetString(8), Text(9), r.GetInt32(10), Text(11), r.GetInt32(12)));
            }

            return list;
        }
    }

    /// <summary>UTC, fixed width: compares as text in the same order as in time.</summary>
    private static string Timestamp(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    private bool HasColumn(string table, string column)
    {
        using var cmd = _db.CreateCommand();
        cmd.CommandText = $"SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = $c";
        cmd.Parameters.AddWithValue("$c", column);
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) > 0;
    }

    /// <summary>Inserts an event in the open transaction; it is announced (<see cref="EventWritten"/>) once that commits.</summary>
    private void InsertEvent(string? vm, string type, string message, string? project = null)
    {
        // A VM's event without a project takes the VM's (the supervisor's events name only the VM).
        Command(_db, "INSERT INTO events (at, vm, type, message, project) VALUES ($a, $v, $t, $m, COALESCE($p, (SELECT json_extract(doc, '$.project') FROM vms WHERE name = $v)))",
            ("$a", DateTimeOffset.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture)), ("$v", vm), ("$t", type), ("$m", message), ("$p", project));
        using (var written = _db.CreateCommand())
        {
            written.CommandText = "SELECT id, at, vm, type, message, project FROM events WHERE id = last_insert_rowid()";
            using var reader = written.ExecuteReader();
            reader.Read();
            _written.Add(ReadEvent(reader));
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
