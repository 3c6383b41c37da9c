using HostVM.Networking.UserNet;

namespace HostVM.Cli.Tests;

/// <summary>`--net user`: the host is out of the guest's reach unless host-loopback=on asks for it.</summary>
public sealed class NetworkBackendsTests
{
    [Theory]
    [InlineData("user", false)]
    [InlineData("user,host-loopback=off", false)]
    [InlineData("user,host-loopback=on", true)]
    public void HostLoopbackIsOptIn(string option, bool hostLoopback)
    {
        var spec = NetworkBackends.Spec(KeyValueList.Parse("--net", option));
        Assert.Equal(hostLoopback, spec.HostLoopback);
        using var port = (UserNetwork)spec.Open();
        Assert.Equal(hostLoopback, port.Egress.HostLoopback);
        Assert.False(port.Egress.DenyPrivate); // one user's VM, like QEMU's: the LAN stays reachable
    }

    [Theory]
    [InlineData("switch=lan,host-loopback=on", "only works with user networking")]
    [InlineData("user,host-loopback=maybe", "write on or off")]
    public void HostLoopbackIsRefusedWhereItMeansNothing(string option, string message)
    {
        var e = Assert.Throws<DeviceOptionException>(() => NetworkBackends.Spec(KeyValueList.Parse("--net", option)));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }
}
