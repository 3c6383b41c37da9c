namespace HostVM.Networking.UserNet;

/// <summary>
/// The DHCP pool: which client MAC holds which address. A new client gets the lowest free address of
/// the pool; a client that asks again gets the address it had, even after its lease expired, unless
/// another client needed it in the meantime (expired leases are reused only when nothing else is free,
/// the longest-expired first). Bounded by the pool and by <see cref="MaxLeases"/>, so a guest inventing
/// client MACs can exhaust the pool (as on any LAN) but not host memory. Not thread-safe: the user
/// network's lock guards it.
/// </summary>
internal sealed class DhcpLeaseTable(uint first, uint last, Func<uint, MacAddress, bool> isAvailableTo)
{
    public const int MaxLeases = 4096;

    /// <summary>How long an offered address is kept for the client's REQUEST.</summary>
    public const long OfferHoldMilliseconds = 60_000;

    private readonly Dictionary<MacAddress, DhcpLease> _byMac = [];
    private readonly Dictionary<uint, DhcpLease> _byAddress = [];

    /// <summary>Clients refused an address because none was free.</summary>
    public long Exhausted { get; private set; }

    public int CountBound(long now) => _byMac.Values.Count(lease => lease.Bound && lease.IsActive(now));

    /// <summary>The MAC that holds an acknowledged, unexpired lease on <paramref name="address"/>.</summary>
    public bool TryGetBound(uint address, long now, out MacAddress mac)
    {
        if (_byAddress.TryGetValue(address, out var lease) && lease.Bound && lease.IsActive(now))
        {
            mac = lease.Mac;
            return true;
        }

        mac = default;
        return false;
    }

    /// <summary>The address <paramref name="mac"/> holds an acknowledged, unexpired lease on.</summary>
    public bool TryGetBoundAddress(MacAddress mac, long now, out uint address)
    {
        if (_byMac.TryGetValue(mac, out var lease) && lease.Bound && lease.IsActive(now))
        {
            address = lease.Address;
            return true;
        }

        address = 0;
        return false;
    }

    /// <summary>The address to offer <paramref name="mac"/> (held for its REQUEST), or null when the pool is exhausted.</summary>
    public DhcpLease? Offer(MacAddress mac, long now)
    {
        var lease = Own(mac, now) ?? Allocate(mac, now);
        if (lease is null)
        {
            Exhausted++;
            return null;
        }

        if (!lease.IsActive(now))
        {
            lease.Bound = false;
            lease.ExpiresAt = now + OfferHoldMilliseconds;
        }
        else if (!lease.Bound)
        {
            lease.ExpiresAt = now + OfferHoldMilliseconds;
        }

        return lease;
    }

    /// <summary>
    /// Binds <paramref name="wanted"/> (0: whatever the client holds, or a new address) to <paramref name="mac"/>
    /// for <paramref name="leaseMilliseconds"/>; null means NAK: the client holds another address, the address is
    /// another client's or outside the pool, or nothing is free.
    /// </summary>
    public DhcpLease? Request(MacAddress mac, uint wanted, long now, long leaseMilliseconds)
    {
        var lease = Own(mac, now);
        if (lease is not null)
        {
            if (wanted != 0 && wanted != lease.Address)
            {
                return null;
            }
        }
        else if (wanted == 0)
        {
            lease = Allocate(mac, now);
            if (lease is null)
            {
                Exhausted++;
                return null;
            }
        }
        else
        {
            // No lease here (the client rebooted, or we did): it may keep its address if nobody else has it.
            if (wanted < first || wanted > last || !isAvailableTo(wanted, mac))
            {
                return null;
            }

            if (_byAddress.TryGetValue(wanted, out var other))
            {
                if (other.IsActive(now))
                {
                    return null;
                }

                Remove(other);
            }

            if (!MakeRoom(now))
            {
                Exhausted++;
                return null;
            }

            lease = Add(mac, wanted);
        }

        lease.Bound = true;
        lease.ExpiresAt = now + leaseMilliseconds;
        return lease;
    }

    /// <summary>The client gives its address back (DHCPRELEASE); it stays remembered, so the client gets it again if still free.</summary>
    public void Release(MacAddress mac, uint address, long now)
    {
        if (_byMac.TryGetValue(mac, out var lease) && lease.Address == address)
        {
            lease.Bound = false;
            lease.ExpiresAt = now;
        }
    }

    /// <summary>The client's lease if it may still use that address (unexpired, or expired and not in use by anyone else).</summary>
    private DhcpLease? Own(MacAddress mac, long now)
    {
        if (!_byMac.TryGetValue(mac, out var lease))
        {
            return null;
        }

        if (lease.IsActive(now) || isAvailableTo(lease.Address, mac))
        {
            return lease;
        }

        Remove(lease);
        return null;
    }

    private DhcpLease? Allocate(MacAddress mac, long now)
    {
        if (!MakeRoom(now))
        {
            return null;
        }

        // Every address skipped is leased or in use, and both are bounded, so this ends quickly even in a big pool.
        for (uint address = first; ; address++)
        {
            if (!_byAddress.ContainsKey(address) && isAvailableTo(address, mac))
            {
                return Add(mac, address);
            }

            if (address == last)
            {
                break;
            }
        }

        var reusable = OldestExpired(now, mac);
        if (reusable is null)
        {
            return null;
        }

        Remove(reusable);
        return Add(mac, reusable.Address);
    }

    /// <summary>Makes sure one more lease fits under <see cref="MaxLeases"/>, forgetting the longest-expired one if needed.</summary>
    private bool MakeRoom(long now)
    {
        if (_byMac.Count < MaxLeases)
        {
            return true;
        }

        var oldest = OldestExpired(now, forMac: null);
        if (oldest is null)
        {
            return false;
        }

        Remove(oldest);
        return true;
    }

    private DhcpLease? OldestExpired(long now, MacAddress? forMac)
    {
        DhcpLease? oldest = null;
        foreach (var lease in _byMac.Values)
        {
            if (!lease.IsActive(now) && (oldest is null || lease.ExpiresAt < oldest.ExpiresAt) &&
                (forMac is not { } mac || isAvailableTo(lease.Address, mac)))
            {
                oldest = lease;
            }
        }

        return oldest;
    }

    private DhcpLease Add(MacAddress mac, uint address)
    {
        var lease = new DhcpLease(mac, address);
        _byMac.Add(mac, lease);
        _byAddress.Add(address, lease);
        return lease;
    }

    private void Remove(DhcpLease lease)
    {
        _byMac.Remove(lease.Mac);
        _byAddress.Remove(lease.Address);
    }
}
