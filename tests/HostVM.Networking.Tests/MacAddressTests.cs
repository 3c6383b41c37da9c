namespace HostVM.Networking.Tests;

public class MacAddressTests
{
    [Fact]
    public void ParseAndFormatRoundTrip()
    {
        var mac = MacAddress.Parse("52:54:00:12:34:5A");
        Assert.Equal(0x5254_0012_345aUL, mac.Value);
        Assert.Equal("52:54:00:12:34:5a", mac.ToString());
        Assert.False(mac.IsMulticast);
        Assert.True(MacAddress.Broadcast.IsMulticast);
        Span<byte> b = stackalloc byte[6];
        mac.CopyTo(b);
        Assert.Equal(mac, MacAddress.FromBytes(b));
    }

    [Theory]
    [InlineData("52:54:00:12:34")]
    [InlineData("52:54:00:12:34:zz")]
    [InlineData("52:54:00:12:34:567")]
    [InlineData("")]
    public void RejectsMalformed(string text) => Assert.Throws<FormatException>(() => MacAddress.Parse(text));
}
