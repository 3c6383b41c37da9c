using HostVM.Cli.Api;

namespace HostVM.Cli.Tests.Api;

public sealed class DaemonAddressTests
{
    [Theory]
    [InlineData("http://127.0.0.1:8006", "http://127.0.0.1:8006/")]
    [InlineData("127.0.0.1:8006", "https://127.0.0.1:8006/")]
    [InlineData("https://box.example/hostvm", "https://box.example/hostvm/")]
    [InlineData("localhost:1", "https://localhost:1/")]
    public void HttpAddresses(string text, string baseUri)
    {
        var address = DaemonAddress.Parse(text, "--host");
        Assert.Equal(new Uri(baseUri), address.BaseUri);
        Assert.Null(address.SocketPath);
        Assert.Equal(new Uri(new Uri(baseUri), "v1/vms"), new Uri(address.BaseUri, "v1/vms"));
    }

    [Fact]
    public void UnixSocket()
    {
        var address = DaemonAddress.Parse("unix:/run/hostvm/hostvm.sock", "--host");
        Assert.Equal("/run/hostvm/hostvm.sock", address.SocketPath);
        Assert.Equal(new Uri("http://localhost/"), address.BaseUri);
    }

    [Theory]
    [InlineData("unix:")]
    [InlineData("ftp://box")]
    [InlineData("http://")]
    public void OthersAreRefused(string text) => Assert.Throws<FormatException>(() => DaemonAddress.Parse(text, "--host"));
}
