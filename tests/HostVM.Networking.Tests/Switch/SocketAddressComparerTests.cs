using System.Net;
using System.Net.Sockets;
using HostVM.Networking.Switch;

namespace HostVM.Networking.Tests.Switch;

public class SocketAddressComparerTests
{
    [Fact]
    public void AddressInALargeBufferEqualsTheSameAddressBuiltFromItsPath()
    {
        var built = new UnixDomainSocketEndPoint("/run/hostvm/switches/lan/1-ab.sock").Serialize();
        var received = new SocketAddress(AddressFamily.Unix, 128);
        built.Buffer.Span[..built.Size].CopyTo(received.Buffer.Span);
        received.Buffer.Span[built.Size + 3] = 0x7f; // leftovers of an earlier, longer address
        received.Size = built.Size;

        Assert.True(SocketAddressComparer.Instance.Equals(built, received));
        Assert.Equal(SocketAddressComparer.Instance.GetHashCode(built), SocketAddressComparer.Instance.GetHashCode(received));
        Assert.False(SocketAddressComparer.Instance.Equals(built, new UnixDomainSocketEndPoint("/run/hostvm/switches/lan/1-ac.sock").Serialize()));
    }
}
