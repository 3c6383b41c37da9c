using HostVM.Machine;
using HostVM.Machine.Virtio;

namespace HostVM.Integration.Tests;

/// <summary>
/// The virtio-input power button with the stock guest: Linux's virtio_input + evdev give
/// /dev/input/event0, busybox acpid (started by guest/init) runs /etc/acpi/power-button on KEY_POWER,
/// and the guest powers off cleanly.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class PowerButtonTests
{
    private static readonly TimeSpan ShutdownLimit = TimeSpan.FromSeconds(20);

    /// <summary>What the guest shows about the button and acpid, for a failure message.</summary>
    public const string GuestDiagnostics = "cat /proc/bus/input/devices; cat /run/acpid.log; ls -l /run /dev/input; ps; cat /proc/interrupts";

    private static MachineExit WaitForPowerOff(GuestSession guest, VirtioInput button)
    {
        var exit = guest.Machine.WaitForExit(ShutdownLimit);
        if (exit is null)
        {
            string state = $"{button.PowerPresses} presses, {button.EventsDelivered} events delivered, {button.PendingEvents} pending\n"
                + string.Join('\n', guest.Machine.DescribeDevices().Concat(guest.Machine.DescribeHarts()));
            string inside = guest.Run(GuestDiagnostics, TimeSpan.FromSeconds(30)).Output;
            throw new TimeoutException($"the guest did not power off within {ShutdownLimit.TotalSeconds} s of the press: {state}\n--- in the guest ---\n{inside}\n--- console ---\n{guest.Console}");
        }

        Assert.True(exit.Reason == MachineExitReason.PowerOff, $"{exit}\n{guest.Console}");
        return exit;
    }

    [Fact]
    public void PressingThePowerButtonPowersTheGuestOff()
    {
        var button = new VirtioInput();
        var config = GuestSession.Configuration() with { VirtioDevices = [button] };
        using var guest = GuestSession.Start(config);

        string devices = guest.Check("cat /proc/bus/input/devices");
        Assert.Contains("N: Name=\"HostVM power button\"", devices);
        Assert.Contains("I: Bus=0006 Vendor=4856 Product=0001 Version=0001", devices);
        Assert.Matches(@"H: Handlers=.*\bevent0\b", devices);
        guest.Check("[ -c /dev/input/event0 ]");
        guest.Check("kill -0 $(cat /run/acpid.pid)"); // acpid runs and has the device open

        Assert.True(button.PressPowerButton());
        WaitForPowerOff(guest, button);
        string console = guest.Console;
        int pressed = console.IndexOf("HOSTVM-POWER-BUTTON", StringComparison.Ordinal);
        Assert.True(pressed >= 0, console);
        Assert.Contains("HOSTVM-POWEROFF", console[pressed..]);
        Assert.DoesNotContain("HOSTVM-POWEROFF-FAILED", console);
        Assert.Equal(4, button.EventsDelivered);
    }

    [Fact]
    public void APressBeforeTheGuestListensReachesTheDriverAndTheNextOnePowersOff()
    {
        // Pressed before the machine starts: the device keeps the press until Linux's driver offers its
        // event buffers during boot, and delivers it then. No one in the guest listens yet (acpid starts
        // later, from init), so the kernel drops it: the guest stays up. That is the guest's choice, not
        // a lost press: the device delivered it, and the host can press again once the guest is up.
        var button = new VirtioInput();
        Assert.True(button.PressPowerButton());
        var config = GuestSession.Configuration() with { VirtioDevices = [button] };
        using var guest = GuestSession.Start(config);

        Assert.Equal(4, button.EventsDelivered);
        Assert.Equal(0, button.PendingEvents);
        Assert.Null(guest.Machine.Exit);
        Assert.DoesNotContain("HOSTVM-POWER-BUTTON", guest.Console);
        guest.Check("true"); // the shell still answers

        Assert.True(button.PressPowerButton());
        WaitForPowerOff(guest, button);
        Assert.Contains("HOSTVM-POWER-BUTTON", guest.Console);
        Assert.Equal(8, button.EventsDelivered);
    }

    [Fact]
    public void WithoutAnInputDeviceNoAcpidRuns()
    {
        using var guest = GuestSession.Start(GuestSession.Configuration());
        guest.Check("[ ! -e /dev/input/event0 ] && [ ! -e /run/acpid.pid ]");
        guest.PowerOff();
    }
}
