using System.Globalization;
using HostVM.Host.Inventory;

namespace HostVM.Host.Security;

/// <summary>
/// Writes the audit log, and keeps what callers without a valid token can add to it bounded. Every call made
/// with a token (or over the local socket) is written as it happens, one entry each. A refusal of a caller
/// without a valid token is written one by one only while its address has had fewer than
/// <see cref="EntriesPerAddress"/> in the current minute (and all addresses together fewer than
/// <see cref="EntriesPerMinute"/>); past that it is counted, and the count is one entry per address and status
/// a minute (method and path "*"), updated every few seconds rather than per call. So a flood costs a bounded
/// number of rows and of synchronous writes, and still shows who sent how many. On top, the table keeps at
/// most <see cref="HostSettings.AuditMaxRows"/> entries, trimmed every minute, unauthenticated ones first.
/// </summary>
public sealed class AuditLog : IDisposable
{
    public const int EntriesPerAddress = 20;

    public const int EntriesPerMinute = 200;

    /// <summary>Addresses counted one by one in a minute; the rest share one count (a flood from many addresses).</summary>
    public const int MaxAddresses = 1000;

    /// <summary>The Remote of the count that stands for addresses past <see cref="MaxAddresses"/>.</summary>
    public const string ManyAddresses = "*";

    public const string CountedAction = "refused-unauthenticated";

    /// <summary>The longest path written: a query string of kilobytes adds nothing to the record but its size.</summary>
    public const int MaxPathLength = 1024;

    /// <summary>Rows the inventory refused (locked, or its disk full) kept in memory until it takes them again.</summary>
    public const int MaxPending = 10_000;

    /// <summary>The action of the row that says how many rows were lost past <see cref="MaxPending"/>.</summary>
    public const string LostAction = "audit-rows-lost";

    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    private readonly InventoryStore _inventory;
    private readonly long _maxRows;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Lock _pendingLock = new();
    private readonly Queue<AuditRecord> _pending = new();
    private int _lost;
    private readonly Dictionary<string, int> _written = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Remote, int Status), AuditTally> _counted = [];
    private readonly ITimer? _flusher;
    private DateTimeOffset _minuteStart;
    private int _writtenThisMinute;
    private DateTimeOffset _trimmedAt;

    /// <param name="inventory">Where entries go.</param>
    /// <param name="maxRows">The most entries kept.</param>
    /// <param name="flushEvery">How often counts are written (null: only by <see cref="Flush"/>, for tests).</param>
    /// <param name="time">The clock.</param>
    public AuditLog(InventoryStore inventory, long maxRows, TimeSpan? flushEvery = null, TimeProvider? time = null)
    {
        _inventory = inventory;
        _maxRows = maxRows;
        _time = time ?? TimeProvider.System;
        _minuteStart = _trimmedAt = _time.GetUtcNow();
        if (flushEvery is { } every)
        {
            _flusher = _time.CreateTimer(_ => Tick(), null, every, every);
        }
    }

    /// <summary>Puts a call on record: at once if it was made with a token, else as <see cref="AuditLog"/> says.</summary>
    public void Add(AuditRecord entry, bool authenticated)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry.Path.Length > MaxPathLength)
        {
            entry = entry with { Path = entry.Path[..MaxPathLength] + "..." };
        }

        if (authenticated)
        {
            Write(entry);
            return;
        }

        lock (_lock)
        {
            var now = _time.GetUtcNow();
            if (now - _minuteStart >= Minute)
            {
                FlushLocked();
                _written.Clear();
                _counted.Clear();
                _writtenThisMinute = 0;
                _minuteStart = now;
            }

            int fromThere = _written.GetValueOrDefault(entry.Remote);
            if (fromThere < EntriesPerAddress && _writtenThisMinute < EntriesPerMinute && (fromThere > 0 || _written.Count < MaxAddresses))
            {
                _written[entry.Remote] = fromThere + 1;
                _writtenThisMinute++;
                Write(entry);
                return;
            }

            string remote = _counted.ContainsKey((entry.Remote, entry.Status)) || _counted.Count < MaxAddresses ? entry.Remote : ManyAddresses;
            if (!_counted.TryGetValue((remote, entry.Status), out var tally))
            {
                _counted[(remote, entry.Status)] = tally = new AuditTally(now);
            }

            tally.Calls++;
        }
    }

    /// <summary>Writes the counts so far (a reader of the log sees every call up to now).</summary>
    public void Flush()
    {
        lock (_lock)
        {
            FlushLocked();
        }
    }

    /// <summary>
    /// Writes <paramref name="entry"/> after the rows the inventory refused before, in order: a call whose row cannot be
    /// written now (the inventory locked by another process, its disk full) is written once it can, not lost.
    /// </summary>
    private void Write(AuditRecord entry)
    {
        lock (_pendingLock)
        {
            if (_pending.Count < MaxPending)
            {
                _pending.Enqueue(entry);
            }
            else
            {
                _lost++;
            }

            WritePendingLocked();
        }
    }

    private void WritePendingLocked()
    {
        try
        {
            while (_pending.TryPeek(out var next))
            {
                _inventory.AddAudit(next);
                _pending.Dequeue();
            }

            if (_lost > 0)
            {
                _inventory.AddAudit(new AuditRecord(0, _time.GetUtcNow(), "hostvm", null, null, "-", "*", "*", LostAction, null, 0,
                    $"{_lost} audit rows were lost: the inventory refused them while {MaxPending} others waited in memory", _lost));
                _lost = 0;
            }
        }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or ObjectDisposedException or InvalidOperationException)
        {
            // Kept, in order, for the next call's row or the next tick.
        }
    }

    private void Tick()
    {
        lock (_pendingLock)
        {
            WritePendingLocked();
        }

        try
        {
            lock (_lock)
            {
                FlushLocked();
                var now = _time.GetUtcNow();
                if (now - _trimmedAt >= Minute)
                {
                    _trimmedAt = now;
                    _inventory.TrimAudit(_maxRows);
                }
            }
        }
        catch (Exception e) when (e is Microsoft.Data.Sqlite.SqliteException or ObjectDisposedException or InvalidOperationException)
        {
            // A full disk or a store being closed: the counts stay in memory and the next tick tries again.
        }
    }

    private void FlushLocked()
    {
        foreach (var ((remote, status), tally) in _counted)
        {
            if (tally.Calls == tally.Written)
            {
                continue;
            }

            string detail = string.Create(CultureInfo.InvariantCulture,
                $"{tally.Calls} more calls without a valid token from {(remote == ManyAddresses ? "other addresses" : remote)} answered {status} in the minute from {tally.Since:HH:mm:ss}Z: counted, not recorded one by one");
            if (tally.Id is not { } id || !_inventory.UpdateAuditCount(id, tally.Calls, detail))
            {
                tally.Id = _inventory.AddAudit(new AuditRecord(0, tally.Since, "anonymous", null, null, remote, "*", "*", CountedAction, null, status, detail, tally.Calls));
            }

            tally.Written = tally.Calls;
        }
    }

    public void Dispose()
    {
        _flusher?.Dispose();
        lock (_pendingLock)
        {
            WritePendingLocked();
        }

        Flush();
    }
}
