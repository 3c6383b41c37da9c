using HostVM.Machine;

namespace HostVM.Integration.Tests;

/// <summary>
/// An idle guest gives back the code its boot decoded; a busy one keeps it; either way the guest goes on
/// running correctly (what it runs next is decoded again).
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class IdleCodeTrimmerTests
{
    [Fact]
    public async Task A_busy_guest_keeps_its_code_and_an_idle_one_gives_it_back()
    {
        using var guest = GuestSession.Start(GuestSession.Configuration());
        var code = guest.Machine.Code;
        Assert.True(code.Bytes > 4 * IdleCodeTrimmer.TrimAboveBytes, $"the boot decoded only {code.Bytes} B");

        // A shell loop keeps the hart busy (far above the idle rate) for the ticks watched: 5 s of guest time.
        using var trimmer = new IdleCodeTrimmer(guest.Machine, TimeSpan.FromSeconds(1));
        var busy = Task.Run(() => guest.Check("end=$(($(date +%s) + 5)); while [ $(date +%s) -lt $end ]; do :; done"));
        await Task.Delay(TimeSpan.FromSeconds(3.5));
        Assert.False(busy.IsCompleted, "the busy loop ended early");
        Assert.Equal(0, trimmer.Trims);
        Assert.True(code.Bytes > 4 * IdleCodeTrimmer.TrimAboveBytes, $"{code.Bytes} B left while busy");

        await busy;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (trimmer.Trims == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        Assert.True(trimmer.Trims > 0, $"not trimmed within 60 s of going idle ({code.Bytes} B)");
        Assert.True(code.Bytes < IdleCodeTrimmer.TrimAboveBytes, $"{code.Bytes} B after the trim");

        // The guest runs on: new processes, the shell, the kernel's paths all decoded again.
        Assert.Equal("6765", guest.Check("a=0; b=1; i=0; while [ $i -lt 20 ]; do c=$((a+b)); a=$b; b=$c; i=$((i+1)); done; echo $a").Trim());
        Assert.Contains("HOSTVM", guest.Check("cat /proc/cmdline; echo HOSTVM"));
    }
}
