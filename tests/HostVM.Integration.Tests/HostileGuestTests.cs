using HostVM.Machine;

namespace HostVM.Integration.Tests;

/// <summary>
/// The guest is hostile: random instruction streams, in M-mode with a trap vector pointing into the
/// same garbage, must never raise a host exception, escape guest RAM or hang the VMM.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class HostileGuestTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void RandomCodeNeverBreaksTheHost(int seed)
    {
        var random = new Random(seed);
        var program = new byte[64 * 1024];
        random.NextBytes(program.AsSpan(0x1000));
        // A prologue that survives the first trap: mtvec -> a handler that skips 2 bytes and
        // returns, then a jump into the random bytes at +0x1000. The random code may undo all of it.
        uint[] prologue = [0x00000297, 0x04028293, 0x30529073, 0x7f50006f]; // auipc; addi t0,0x40; csrw mtvec; j +0xff4
        uint[] handler = [0x341022f3, 0x00228293, 0x34129073, 0x30200073];  // csrr mepc; addi 2; csrw mepc; mret
        for (int i = 0; i < 4; i++)
        {
            BitConverter.TryWriteBytes(program.AsSpan(4 * i), prologue[i]);
            BitConverter.TryWriteBytes(program.AsSpan(0x40 + (4 * i)), handler[i]);
        }
        var config = new MachineConfiguration
        {
            HartCount = 2,
            MemorySize = 16 * MachineConfiguration.MiB,
            Firmware = new BootFile($"random-{seed}.bin", program),
        };

        var run = GuestRun.Boot(config, TimeSpan.FromSeconds(2));

        // Either it is still running when the test stops it, or it found the power device by
        // chance; an internal error (a host exception caught by the VMM) fails the test.
        Assert.False(run.Exit is { Reason: MachineExitReason.GuestError }, run.Describe());
        Assert.True(run.Instructions > 0, run.Describe());
    }
}
