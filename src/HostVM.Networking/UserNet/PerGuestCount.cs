namespace HostVM.Networking.UserNet;

/// <summary>
/// How many entries of a NAT table (TCP connections, UDP flows) each guest address has, so one guest
/// on a shared network cannot take the whole table. Holds an entry only for addresses with a count, so
/// it is never bigger than the table it counts.
/// </summary>
internal sealed class PerGuestCount
{
    private readonly Dictionary<uint, int> _counts = [];

    public int this[uint guest] => _counts.GetValueOrDefault(guest);

    public void Add(uint guest) => _counts[guest] = this[guest] + 1;

    public void Remove(uint guest)
    {
        if (_counts.TryGetValue(guest, out int count))
        {
            if (count <= 1)
            {
                _counts.Remove(guest);
            }
            else
            {
                _counts[guest] = count - 1;
            }
        }
    }

    public void Clear() => _counts.Clear();
}
