using System.Diagnostics;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// "The guest is hostile", device by device, modern and legacy: random and malformed rings, requests and
/// register writes must never throw into the host, write outside the buffers the guest gave (canary),
/// or hang a thread; after every batch a reset brings the device back and a valid request completes.
/// Seeds are fixed; every failure names the seed, the iteration and the operation.
/// </summary>
public sealed class FuzzDeviceTests(ITestOutputHelper output)
{
    private const int Batches = 60;
    private const int PerBatch = 50;

    private static FuzzTarget Target(string device) => device switch
    {
        "blk" => new FuzzBlockTarget(),
        "net" => new FuzzNetTarget(),
        "rng" => new FuzzRngTarget(),
        "console" => new FuzzConsoleTarget(),
        "balloon" => new FuzzBalloonTarget(),
        "input" => new FuzzInputTarget(),
        _ => throw new ArgumentException(device, nameof(device)),
    };

    [Theory]
    [InlineData("blk", false, 0x0b1c_0001)]
    [InlineData("blk", true, 0x0b1c_0002)]
    [InlineData("net", false, 0x0e7_0001)]
    [InlineData("net", true, 0x0e7_0002)]
    [InlineData("rng", false, 0x0f09_0001)]
    [InlineData("rng", true, 0x0f09_0002)]
    [InlineData("console", false, 0x0c0_0001)]
    [InlineData("console", true, 0x0c0_0002)]
    [InlineData("balloon", false, 0x0ba1_0001)]
    [InlineData("balloon", true, 0x0ba1_0002)]
    [InlineData("input", false, 0x0e1e_0001)]
    [InlineData("input", true, 0x0e1e_0002)]
    public void Hostile_guest_cannot_break_the_device(string device, bool legacy, int seed)
    {
        var clock = Stopwatch.StartNew();
        using var target = Target(device);
        using var guest = new FuzzGuest(target, legacy, seed);
        FuzzWatchdog.Run(() => guest.Run(Batches, PerBatch), TimeSpan.FromSeconds(30), () => guest.Where, guest.Abandon);

        guest.CheckCanary();
        Assert.Equal(Batches * PerBatch, guest.Operations);

        // Malformed input must be noticed, not silently accepted: it often leaves the device in DEVICE_NEEDS_RESET.
        Assert.True(guest.NeedsResetSeen >= Batches / 2, $"seed 0x{seed:x}: DEVICE_NEEDS_RESET was seen only {guest.NeedsResetSeen} times");
        Assert.True(guest.LiveOperations >= guest.Operations / 3, $"seed 0x{seed:x}: only {guest.LiveOperations} of {guest.Operations} operations met a live device");
        target.CheckExercised(guest);
        output.WriteLine($"{device} {(legacy ? "legacy" : "modern")}: {guest.Operations} operations ({guest.LiveOperations} on a live device), DEVICE_NEEDS_RESET seen {guest.NeedsResetSeen} times, {clock.Elapsed.TotalMilliseconds:F0} ms");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"{device}: {clock.Elapsed.TotalSeconds:F1} s");
    }
}
