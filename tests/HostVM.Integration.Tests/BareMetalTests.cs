using HostVM.Machine;

namespace HostVM.Integration.Tests;

/// <summary>
/// HostVM's own self-checking bare-metal programs (guest/baremetal, RISC-V assembly) run through
/// --firmware: each reports pass/fail through the sifive,test power device.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class BareMetalTests
{
    [Theory]
    [InlineData("alu", 1)]
    [InlineData("mem", 1)]
    [InlineData("atomics", 1)]
    [InlineData("traps", 1)]
    [InlineData("priv", 1)]
    [InlineData("paging", 1)]
    [InlineData("fpu", 1)]
    [InlineData("smc", 1)]
    [InlineData("smp", 2)]
    [InlineData("smp", 4)]
    public void ProgramPasses(string program, int harts)
    {
        var config = new MachineConfiguration
        {
            HartCount = harts,
            MemorySize = 128 * MachineConfiguration.MiB,
            Firmware = GuestRun.File(GuestArtifacts.BareMetal(program + ".elf")),
        };
        var run = GuestRun.Boot(config, TimeSpan.FromSeconds(60));
        Assert.True(run.Exit is { Reason: MachineExitReason.PowerOff }, run.Describe());
    }
}
