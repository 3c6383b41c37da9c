using System.Text;
using HostVM.Machine;
using HostVM.Machine.Virtio;

namespace HostVM.Integration.Tests;

/// <summary>virtio-rng, virtio-balloon and virtio-console with a real Linux guest.</summary>
[Collection(GuestCollection.Name)]
public sealed class SmallDeviceTests
{
    [Fact]
    public void HwrngYieldsBytesFromTheHost()
    {
        var config = GuestSession.Configuration() with { VirtioDevices = [new VirtioRng()] };
        using var guest = GuestSession.Start(config);
        Assert.Contains("virtio_rng", guest.Check("cat /sys/class/misc/hw_random/rng_current"));
        Assert.Equal("4096", guest.Check("head -c 4096 /dev/hwrng | wc -c").Trim());
        // Not all one value: 4 KiB of a CSPRNG has many distinct bytes.
        int distinct = int.Parse(guest.Check("head -c 4096 /dev/hwrng | od -An -v -tx1 | tr ' ' '\\n' | grep . | sort -u | wc -l").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(distinct > 200, $"only {distinct} distinct byte values");
        Assert.True(guest.Machine.Device<VirtioRng>()!.BytesProvided >= 8192);
        guest.PowerOff();
    }

    private static long MemInfo(GuestSession guest, string field)
    {
        string line = guest.Check($"grep '^{field}:' /proc/meminfo");
        var m = System.Text.RegularExpressions.Regex.Match(line, field + ":\\s+(\\d+) kB");
        Assert.True(m.Success, line);
        return long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }

    private static void WaitUntil(Func<bool> condition, string what, GuestSession guest)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"{what} did not happen\n{string.Join('\n', guest.Machine.DescribeDevices())}\n{guest.Console}");
            Thread.Sleep(100);
        }
    }

    [Fact]
    public void InflatingTheBalloonTakesMemoryAndDeflatingGivesItBack()
    {
        var config = GuestSession.Configuration() with { VirtioDevices = [new VirtioBalloon()] };
        using var guest = GuestSession.Start(config);
        var balloon = guest.Machine.Device<VirtioBalloon>()!;
        long before = MemInfo(guest, "MemAvailable");

        const ulong Target = 96 * MachineConfiguration.MiB;
        balloon.SetTarget(Target);
        WaitUntil(() => balloon.ActualPages == Target / 4096, "inflating to 96 MiB", guest);
        long inflated = MemInfo(guest, "MemAvailable");
        Assert.True(before - inflated > 80L << 20, $"MemAvailable went from {before >> 20} to {inflated >> 20} MiB only");
        Assert.True(balloon.PagesReturned >= (long)(Target / 4096));

        balloon.SetTarget(0);
        WaitUntil(() => balloon.ActualPages == 0, "deflating", guest);
        long deflated = MemInfo(guest, "MemAvailable");
        Assert.True(deflated > before - (16L << 20), $"MemAvailable came back to {deflated >> 20} MiB of {before >> 20}");

        using var got = new ManualResetEventSlim();
        balloon.StatisticsReceived += _ => got.Set();
        balloon.RequestStatistics();
        Assert.True(got.Wait(TimeSpan.FromSeconds(30)), "no statistics from the guest");
        Assert.True(balloon.Statistics!.TotalMemory > 128UL << 20);
        guest.PowerOff();
    }

    [Fact]
    public void VirtioConsoleCarriesBytesBothWays()
    {
        var received = new StringBuilder();
        var console = new VirtioConsole(data =>
        {
            lock (received)
            {
                received.Append(Encoding.ASCII.GetString(data.Span));
            }
        });
        var config = GuestSession.Configuration() with { VirtioDevices = [console] };
        using var guest = GuestSession.Start(config);
        // hvc0 is the SBI console (CONFIG_HVC_RISCV_SBI); the virtio console's port is the next one.
        guest.Check("stty -F /dev/hvc1 raw -echo && echo hello-from-hvc1 > /dev/hvc1");
        WaitUntil(() => { lock (received) { return received.ToString().Contains("hello-from-hvc1", StringComparison.Ordinal); } }, "output on the host side", guest);

        guest.Check("(head -n 1 /dev/hvc1 > /tmp/got) & sleep 1");
        console.SendInput("typed-on-the-host\n"u8);
        string got = guest.Check("for i in $(seq 50); do [ -s /tmp/got ] && break; sleep 0.2; done; cat /tmp/got");
        Assert.Contains("typed-on-the-host", got);
        guest.PowerOff();
    }
}
