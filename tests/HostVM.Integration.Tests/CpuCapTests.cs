using System.Diagnostics;
using HostVM.Machine;

namespace HostVM.Integration.Tests;

/// <summary>
/// The CPU cap, measured from the host's side: a capped busy guest gets its share of a core and no more,
/// a new cap takes effect while it runs, and an idle capped guest is not held back.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class CpuCapTests(ITestOutputHelper output)
{
    /// <summary>What the hart threads had over a window, as fractions of one core per hart.</summary>
    private sealed record Window(double OnCpu, double Waiting, double Reported, TimeSpan Throttled)
    {
        /// <summary>The share of a core the host gave the threads while they were runnable (what no cap would get).</summary>
        public double HostShare => OnCpu + Waiting > 0 ? OnCpu / (OnCpu + Waiting) : 1;

        public override string ToString() =>
            $"host says {OnCpu:P1} on a CPU and {Waiting:P1} waiting for one; HostVM says {Reported:P1}, throttled {Throttled.TotalMilliseconds:F0} ms";
    }

    private Window Measure(VirtualMachine vm, TimeSpan length, string what)
    {
        var before = HartThreadCpu.Sample();
        var reportedBefore = vm.CpuTime;
        var throttledBefore = vm.CpuThrottledTime;
        var watch = Stopwatch.StartNew();
        Thread.Sleep(length);
        var after = HartThreadCpu.Sample();
        var wall = watch.Elapsed * vm.Harts.Count;
        Assert.True(before.Threads == vm.Harts.Count && after.Threads == vm.Harts.Count,
            $"found {before.Threads}, then {after.Threads} hart threads for {vm.Harts.Count} harts (machine: {vm.Exit?.ToString() ?? "running"})");
        var window = new Window((after.OnCpu - before.OnCpu) / wall, (after.Waiting - before.Waiting) / wall,
            (vm.CpuTime - reportedBefore) / wall, vm.CpuThrottledTime - throttledBefore);
        output.WriteLine($"{what}: {window}");
        return window;
    }

    /// <summary>
    /// A window of a busy guest in which the host would have let an uncapped hart use more than
    /// <paramref name="high"/> of a core (up to three tries): on a host busier than that, a cap and no
    /// cap look alike.
    /// </summary>
    private Window MeasureBusy(VirtualMachine vm, TimeSpan length, double high, string what)
    {
        var window = Measure(vm, length, what);
        for (int i = 1; i < 3 && window.HostShare <= high; i++)
        {
            window = Measure(vm, length, what + " (again: the host was busy)");
        }

        return window;
    }

    /// <summary>The cap held the hart back, unless the host itself kept it below the cap.</summary>
    private static void AssertHeldBack(Window w, double cap, TimeSpan atLeast, string what) =>
        Assert.True(w.Throttled >= atLeast || w.HostShare <= cap, $"{what}: not held back; {w}");

    /// <summary>
    /// The hart got between <paramref name="low"/> and <paramref name="high"/> of a core. The upper bound
    /// is on CPU time; the lower one counts time the thread was runnable but the host (2 cores, other
    /// work) ran something else, which the cap did not take from it.
    /// </summary>
    private static void AssertShare(Window w, double low, double high, string what)
    {
        Assert.True(w.OnCpu <= high && w.OnCpu + w.Waiting >= low, $"{what}: wanted {low:P0} to {high:P0} of a core; {w}");
        Assert.True(Math.Abs(w.Reported - w.OnCpu) < 0.05, $"{what}: HostVM's own CPU time disagrees with the host's; {w}");
    }

    [Fact]
    public void ABusyGuestGetsItsCapAndANewCapWhileItRunsAndAnIdleOneIsNotHeldBack()
    {
        var config = GuestSession.Configuration() with { CpuCapPercent = 25 };
        using var guest = GuestSession.Start(config);
        var vm = guest.Machine;
        Assert.Equal(25, vm.CpuCapPercent);

        guest.Check("(while :; do :; done) >/dev/null 2>&1 & echo $! > /tmp/busy");
        Thread.Sleep(1000); // the burst the hart saved while idle is spent by now
        var capped = MeasureBusy(vm, TimeSpan.FromSeconds(4), 0.30, "busy at 25%");
        AssertShare(capped, 0.20, 0.30, "busy at 25%");
        AssertHeldBack(capped, 0.25, TimeSpan.FromSeconds(1), "busy at 25%");

        vm.SetCpuCap(50);
        Thread.Sleep(500);
        var raised = MeasureBusy(vm, TimeSpan.FromSeconds(4), 0.60, "busy at 50%");
        AssertShare(raised, 0.40, 0.60, "busy at 50%");
        AssertHeldBack(raised, 0.50, TimeSpan.FromSeconds(0.5), "busy at 50%");

        // `wait` reaps the loop in the foreground: a child ending while the shell waits at its prompt
        // interrupts its read (SIGCHLD, no SA_RESTART), which busybox ash takes for the end of input.
        guest.Check("kill $(cat /tmp/busy); wait; true");
        vm.SetCpuCap(25);
        Thread.Sleep(1000);
        var idle = Measure(vm, TimeSpan.FromSeconds(3), "idle at 25%");
        Assert.True(idle.OnCpu < 0.10, $"idle at 25%: {idle}");
        Assert.True(idle.Throttled < TimeSpan.FromMilliseconds(100), $"idle at 25%: an idle guest was held back; {idle}");

        var watch = Stopwatch.StartNew();
        Assert.Contains("pong", guest.Check("echo pong"));
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"idle at 25%: a shell command took {watch.Elapsed.TotalSeconds:F1} s");
        guest.PowerOff();
    }

    [Fact]
    public void ASpinningHartIsHeldToItsCapAndPausesAndStopsPromptly()
    {
        // `j .` at the reset address: a hart that never traps, never sleeps and never stops by itself.
        var config = new MachineConfiguration
        {
            MemorySize = 16 * MachineConfiguration.MiB,
            Firmware = new BootFile("spin", new byte[] { 0x6f, 0x00, 0x00, 0x00 }),
            CpuCapPercent = 10,
        };
        using var vm = VirtualMachine.Boot(config, _ => { });
        vm.Start();
        Thread.Sleep(500);
        var spinning = MeasureBusy(vm, TimeSpan.FromSeconds(3), 0.13, "spinning at 10%");
        AssertShare(spinning, 0.07, 0.13, "spinning at 10%");
        AssertHeldBack(spinning, 0.10, TimeSpan.FromSeconds(1), "spinning at 10%");

        vm.Pause();
        Thread.Sleep(100);
        var paused = Measure(vm, TimeSpan.FromSeconds(1), "paused");
        Assert.True(paused.OnCpu < 0.01 && paused.Throttled < TimeSpan.FromMilliseconds(50), $"paused: {paused}");
        vm.Resume();

        vm.SetCpuCap(null);
        Thread.Sleep(200);
        var uncapped = Measure(vm, TimeSpan.FromSeconds(1), "uncapped");
        Assert.True(uncapped.OnCpu + uncapped.Waiting > 0.9, $"uncapped: {uncapped}");

        vm.SetCpuCap(1);
        Thread.Sleep(200);
        var watch = Stopwatch.StartNew();
        vm.Stop("test");
        vm.Dispose(); // joins the hart threads
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(1), $"stopping a hart capped at 1% took {watch.Elapsed.TotalMilliseconds:F0} ms");
    }
}
