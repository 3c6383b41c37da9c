namespace HostVM.Networking.UserNet;

/// <summary>
/// Which MAC each guest address was last seen with (from the source of its ARP and IPv4 frames), so
/// frames toward a guest go to that guest and no other. Bounded: a guest spraying source addresses
/// (possible with a subnet wider than /24) evicts the least recently seen entries, never grows the table.
/// Not thread-safe: the user network's lock guards it.
/// </summary>
internal sealed class NeighbourTable(int capacity)
{
    private readonly Dictionary<uint, LinkedListNode<Neighbour>> _byAddress = [];

    // Least recently seen first.
    private readonly LinkedList<Neighbour> _byAge = new();

    public int Count => _byAddress.Count;

    public void Learn(uint address, MacAddress mac, long now)
    {
        if (_byAddress.TryGetValue(address, out var node))
        {
            node.Value = new Neighbour(address, mac, now);
            if (node != _byAge.Last)
            {
                _byAge.Remove(node);
                _byAge.AddLast(node);
            }

            return;
        }

        if (_byAddress.Count >= capacity && _byAge.First is { } oldest)
        {
            _byAge.RemoveFirst();
            _byAddress.Remove(oldest.Value.Address);
        }

        _byAddress.Add(address, _byAge.AddLast(new Neighbour(address, mac, now)));
    }

    public bool TryGet(uint address, out Neighbour neighbour)
    {
        if (_byAddress.TryGetValue(address, out var node))
        {
            neighbour = node.Value;
            return true;
        }

        neighbour = default;
        return false;
    }
}
