namespace HostVM.Networking.Switch;

/// <summary>
/// Which port each source MAC was last seen behind, so unicast goes to one port instead of all.
/// Entries age out (a VM that moved or stopped is flooded to again) and move when a MAC appears elsewhere.
/// Thread-safe: the receive thread learns while the send path looks up.
/// </summary>
internal sealed class MacLearningTable
{
    /// <summary>Entries beyond this are not learned: a guest spraying random source MACs cannot grow the table without bound.</summary>
    public const int MaxEntries = 4096;

    private readonly Dictionary<MacAddress, Entry> entries = [];
    private readonly long maxAgeMilliseconds;

    public MacLearningTable(TimeSpan maxAge)
    {
        maxAgeMilliseconds = (long)maxAge.TotalMilliseconds;
    }

    public int Count
    {
        get
        {
            lock (entries)
            {
                return entries.Count;
            }
        }
    }

    public void Learn(MacAddress mac, SwitchPeer peer, long nowMilliseconds)
    {
        lock (entries)
        {
            if (entries.Count >= MaxEntries && !entries.ContainsKey(mac))
            {
                RemoveExpired(nowMilliseconds);
                if (entries.Count >= MaxEntries)
                {
                    return;
                }
            }

            entries[mac] = new Entry(peer, nowMilliseconds);
        }
    }

    public bool TryLookup(MacAddress mac, long nowMilliseconds, out SwitchPeer? peer)
    {
        lock (entries)
        {
            if (entries.TryGetValue(mac, out var entry))
            {
                if (nowMilliseconds - entry.LastSeenMilliseconds <= maxAgeMilliseconds)
                {
                    peer = entry.Peer;
                    return true;
                }

                entries.Remove(mac);
            }
        }

        peer = null;
        return false;
    }

    /// <summary>Drops every MAC behind <paramref name="socketPath"/> (that port is gone).</summary>
    public void Forget(string socketPath)
    {
        lock (entries)
        {
            foreach (var (mac, entry) in entries)
            {
                if (entry.Peer.SocketPath == socketPath)
                {
                    entries.Remove(mac);
                }
            }
        }
    }

    private void RemoveExpired(long nowMilliseconds)
    {
        foreach (var (mac, entry) in entries)
        {
            if (nowMilliseconds - entry.LastSeenMilliseconds > maxAgeMilliseconds)
            {
                entries.Remove(mac);
            }
        }
    }

    private readonly record struct Entry(SwitchPeer Peer, long LastSeenMilliseconds);
}
