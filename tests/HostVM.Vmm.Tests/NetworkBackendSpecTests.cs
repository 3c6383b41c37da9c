namespace HostVM.Vmm.Tests;

/// <summary>host_dev_name for user networking: host-loopback=on is the only way to the host's loopback.</summary>
public sealed class NetworkBackendSpecTests
{
    [Theory]
    [InlineData("user", false, "user")]
    [InlineData("user:host-loopback=off", false, "user")]
    [InlineData("user:host-loopback=on", true, "user:host-loopback=on")]
    [InlineData("user:hostfwd=tcp:127.0.0.1:8080-:80,host-loopback=on", true, "user:hostfwd=tcp:127.0.0.1:8080-:80,host-loopback=on")]
    public void HostLoopbackIsParsedAndPrintedBack(string hostDevName, bool hostLoopback, string printed)
    {
        var spec = NetworkBackendSpec.Parse(hostDevName);
        Assert.Equal(NetworkBackendKind.User, spec.Kind);
        Assert.Equal(hostLoopback, spec.HostLoopback);
        Assert.Equal(printed, spec.ToString());
    }

    [Fact]
    public void AnUnknownUserItemIsRefusedWithWhatIsAccepted()
    {
        var e = Assert.Throws<VmmFault>(() => NetworkBackendSpec.Parse("user:host-loopback=yes"));
        Assert.Contains("host-loopback=on|off", e.Message, StringComparison.Ordinal);
    }
}
