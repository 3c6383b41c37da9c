namespace HostVM.Networking.UserNet;

/// <summary>
/// How many entries of a NAT table (TCP connections, UDP flows) each guest holds, so one guest on a shared
/// network cannot take the whole table. A guest is counted by the MAC its frames come from, not by its IP
/// address: a guest may send from any free address of the subnet, so a count per address would give it a
/// fresh allowance per address it makes up, while its MAC is the one its NIC has (the VMM drops frames from
/// any other, GuestFrameFilter). Remembers whose each flow is, so closing a flow needs only its key; holds
/// nothing for flows it does not count, so it is never bigger than the table it counts.
/// </summary>
internal sealed class PerGuestCount
{
    private readonly Dictionary<MacAddress, int> _counts = [];
    private readonly Dictionary<FlowKey, MacAddress> _owners = [];

    public int this[MacAddress guest] => _counts.GetValueOrDefault(guest);

    public void Add(FlowKey flow, MacAddress guest)
    {
        if (_owners.TryAdd(flow, guest))
        {
            _counts[guest] = this[guest] + 1;
        }
    }

    public void Remove(FlowKey flow)
    {
        if (!_owners.Remove(flow, out var guest))
        {
            return;
        }

        int count = this[guest];
        if (count <= 1)
        {
            _counts.Remove(guest);
        }
        else
        {
            _counts[guest] = count - 1;
        }
    }

    public void Clear()
    {
        _counts.Clear();
        _owners.Clear();
    }
}
