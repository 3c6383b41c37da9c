using System.Diagnostics;
using System.Net.Sockets;
using System.Security.Cryptography;
using HostVM.Networking.Tap;
using HostVM.Networking.Tests.Switch;

namespace HostVM.Networking.Tests.Tap;

public class TapPortTests
{
    /// <summary>Creating a TAP needs root (CAP_NET_ADMIN) and the tun device; without them only the error paths run.</summary>
    private static bool CanCreateTap => Environment.IsPrivilegedProcess && File.Exists("/dev/net/tun");

    [Theory]
    [InlineData("")]
    [InlineData("a-name-too-long0")]
    public void NameOfWrongLengthIsRejected(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => TapPort.Open(name));
        Assert.Contains("1 to 15 bytes", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a/b")]
    [InlineData("tap 0")]
    [InlineData("tap:0")]
    [InlineData("..")]
    public void NameWithForbiddenCharactersIsRejected(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => TapPort.Open(name));
        Assert.Contains("not valid", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ErrorMessagesSayWhatToDo()
    {
        Assert.Contains("modprobe tun", TapPort.DescribeOpenError(2, "tap0"), StringComparison.Ordinal);
        string denied = TapPort.DescribeOpenError(1, "tap0");
        Assert.Contains("CAP_NET_ADMIN", denied, StringComparison.Ordinal);
        Assert.Contains("ip tuntap add dev tap0 mode tap user $USER", denied, StringComparison.Ordinal);
        Assert.Equal(denied, TapPort.DescribeOpenError(13, "tap0"));
        Assert.Contains("already in use", TapPort.DescribeOpenError(16, "tap0"), StringComparison.Ordinal);
    }

    [Fact]
    public void WithoutPrivilegeOpeningFailsClearly()
    {
        // As root, the open runs on a thread without CAP_NET_ADMIN, as an ordinary user's would.
        var e = WithoutNetAdmin.Run(() => Assert.Throws<IOException>(() => TapPort.Open("hvtest0")));
        Assert.True(e.Message.Contains("CAP_NET_ADMIN", StringComparison.Ordinal) || e.Message.Contains("/dev/net/tun", StringComparison.Ordinal), e.Message);
    }

    [Fact]
    public void CarriesFramesBothWaysOnARealTap()
    {
        Assert.SkipUnless(CanCreateTap, "creating a TAP needs root (CAP_NET_ADMIN) and /dev/net/tun; test.sh as root runs it");

        string name = "hvt" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        int subnet = RandomNumberGenerator.GetInt32(256);
        var received = new FrameCollector();
        var port = TapPort.Open(name);
        try
        {
            Assert.Equal(name, port.InterfaceName);
            Assert.True(Directory.Exists($"/sys/class/net/{name}"));
            port.Start(received);

            // A second opener of the same TAP is told it is taken.
            var busy = Assert.Throws<IOException>(() => TapPort.Open(name));
            Assert.Contains("already in use", busy.Message, StringComparison.Ordinal);

            Ip($"link set dev {name} up");
            Ip($"addr add 198.18.{subnet}.1/24 dev {name}");

            // The host has to ARP for the address before it can send there: the request comes out of the TAP.
            using (var udp = new UdpClient())
            {
                udp.Send([1], $"198.18.{subnet}.2", 9);
            }

            Assert.True(WaitForArp(received), "no ARP request came out of the TAP");

            // A frame the guest sends is received by the host interface.
            long before = RxPackets(name);
            var frame = new byte[60];
            MacAddress.Broadcast.CopyTo(frame);
            MacAddress.Parse("52:54:00:00:00:01").CopyTo(frame.AsSpan(6));
            frame[12] = 0x88;
            frame[13] = 0xb5;
            port.Send(frame);
            Assert.Equal(before + 1, RxPackets(name));
            Assert.Equal(0, port.DroppedFrames);
        }
        finally
        {
            var stopwatch = Stopwatch.StartNew();
            port.Dispose();
            Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(1), $"Dispose took {stopwatch.Elapsed}");
        }

        // Not persistent: the interface goes with its last descriptor.
        Assert.False(Directory.Exists($"/sys/class/net/{name}"));
    }

    private static bool WaitForArp(FrameCollector received)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (DateTime.UtcNow < deadline)
        {
            // IPv6 neighbour discovery and the like may come first.
            if (received.Next(TimeSpan.FromMilliseconds(200)) is { } frame && frame[12] == 0x08 && frame[13] == 0x06)
            {
                return true;
            }
        }

        return false;
    }

    private static long RxPackets(string name) => long.Parse(File.ReadAllText($"/sys/class/net/{name}/statistics/rx_packets").Trim(), System.Globalization.CultureInfo.InvariantCulture);

    private static void Ip(string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo("ip", arguments) { RedirectStandardError = true })!;
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"ip {arguments}: {error}");
    }
}
