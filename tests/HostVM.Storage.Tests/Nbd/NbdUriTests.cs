using HostVM.Storage.Nbd;

namespace HostVM.Storage.Tests.Nbd;

/// <summary>NBD URIs as doc/uri.md writes them, and a clear message for anything else.</summary>
public sealed class NbdUriTests
{
    [Theory]
    [InlineData("nbd://example.com/disk", "example.com", 10809, "disk")]
    [InlineData("nbd://example.com:1234/disk", "example.com", 1234, "disk")]
    [InlineData("nbd://example.com/", "example.com", 10809, "")]
    [InlineData("nbd://example.com", "example.com", 10809, "")]
    [InlineData("nbd://example.com//disk", "example.com", 10809, "/disk")]
    [InlineData("nbd://example.com/hello%20world", "example.com", 10809, "hello world")]
    [InlineData("nbd://[::1]:99/x", "::1", 99, "x")]
    [InlineData("NBD://127.0.0.1/x", "127.0.0.1", 10809, "x")]
    public void TcpUrisNameHostPortAndExport(string text, string host, int port, string export)
    {
        var uri = NbdUri.Parse(text);
        Assert.Equal(host, uri.Host);
        Assert.Equal(port, uri.Port);
        Assert.Equal(export, uri.ExportName);
        Assert.Null(uri.SocketPath);
        Assert.False(uri.RequireTls);
        Assert.Equal(uri, NbdUri.Parse(uri.ToString()));
    }

    [Fact]
    public void UnixUrisAndTlsParameters()
    {
        var uri = NbdUri.Parse("nbd+unix:///disk?socket=/run/nbd%20x.sock");
        Assert.Equal("/run/nbd x.sock", uri.SocketPath);
        Assert.Equal("disk", uri.ExportName);
        Assert.Null(uri.Host);

        var tls = NbdUri.Parse("nbds://h/e?tls-hostname=srv&tls-verify-peer=0&x-tls-ca=/ca.pem&x-tls-fingerprint=AB:CD");
        Assert.True(tls.RequireTls);
        Assert.Equal("srv", tls.TlsHostname);
        Assert.False(tls.TlsVerifyPeer);
        Assert.Equal("/ca.pem", tls.TlsCaFile);
        Assert.Equal("AB:CD", tls.TlsFingerprint);
        Assert.True(NbdUri.Parse("nbds+unix:///e?socket=s").RequireTls);
    }

    [Theory]
    [InlineData("http://example.com/disk", "scheme")]
    [InlineData("nbd+unix:///disk", "needs ?socket=PATH")]
    [InlineData("nbd+unix://host/disk?socket=s", "has no host")]
    [InlineData("nbd://h/disk?socket=/s", "socket= is for nbd+unix")]
    [InlineData("nbd://h:0/disk", "port '0'")]
    [InlineData("nbd://h:http/disk", "port 'http'")]
    [InlineData("nbd://:10809/disk", "host is missing")]
    [InlineData("nbd://user@h/disk", "user names")]
    [InlineData("nbd://h/disk?size=1", "unknown query parameter 'size'")]
    [InlineData("nbd://h/disk#frag", "fragment")]
    [InlineData("nbd://h/a%00b", "no NUL")]
    [InlineData("nbd://[::1/disk", "lacks its ']'")]
    public void AnythingElseIsRefusedSayingWhy(string text, string expected)
    {
        var e = Assert.Throws<FormatException>(() => NbdUri.Parse(text));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Contains(text, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("nbd://h/x", true)]
    [InlineData("nbds+unix:///x?socket=s", true)]
    [InlineData("/var/lib/disk.img", false)]
    [InlineData("nbd.img", false)]
    [InlineData("http://h/x", false)]
    public void ANbdUriIsToldFromAPath(string text, bool isNbd) => Assert.Equal(isNbd, NbdUri.IsNbdUri(text));
}
