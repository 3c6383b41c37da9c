using System.Net;

namespace HostVM.Networking.Switch;

/// <summary>
/// Compares socket addresses by their bytes up to <see cref="SocketAddress.Size"/>. SocketAddress's own
/// Equals also looks at the unused tail of its buffer, so an address received into a large reusable buffer
/// never equals the same address built from a path.
/// </summary>
internal sealed class SocketAddressComparer : IEqualityComparer<SocketAddress>
{
    public static readonly SocketAddressComparer Instance = new();

    public bool Equals(SocketAddress? x, SocketAddress? y)
    {
        if (x is null || y is null)
        {
            return ReferenceEquals(x, y);
        }

        return x.Size == y.Size && x.Buffer.Span[..x.Size].SequenceEqual(y.Buffer.Span[..y.Size]);
    }

    public int GetHashCode(SocketAddress obj)
    {
        var hash = default(HashCode);
        hash.AddBytes(obj.Buffer.Span[..obj.Size]);
        return hash.ToHashCode();
    }
}
