using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using HostVM.Machine.Cpu;
using HostVM.Machine.State;
using HostVM.Machine.Tests.Boot;
using HostVM.Machine.Tests.Cpu;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests;

/// <summary>
/// A whole machine's state round-trips: a bare-metal program runs, the machine is paused and saved, a
/// second machine from the same configuration gets its RAM and state, and both run the program to its
/// end (power-off) with the same console output, registers and memory.
/// </summary>
public sealed class VirtualMachineStateTests
{
    private const ulong Base = 0x8000_0000;
    private const ulong DataAddress = 0x8010_0000;
    private const int Iterations = 3 << 20; // a multiple of 4096: one LUI loads it

    /// <summary>
    /// Counts to <see cref="Iterations"/>, mixing the count into x10 and storing it; every 256th count
    /// writes a letter to the UART; then writes the power-off code to the finisher.
    /// </summary>
    private static uint[] Program() =>
    [
        Asm.Lui(5, 0),                         // x5 = 0 (count)
        Asm.Lui(6, Iterations >> 12),          // x6 = Iterations
        Asm.Lui(7, 0x10000),                   // x7 = UART
        Asm.Lui(8, 0x80100),                   // x8 = 0x8010_0000, sign-extended: cut back to 32 bits
        Asm.Slli(8, 8, 32),
        Asm.Srli(8, 8, 32),
        // loop (index 6):
        Asm.Addi(5, 5, 1),
        Asm.Mul(9, 5, 5),
        Asm.Xor(10, 10, 9),
        Asm.Sd(10, 8, 0),
        Asm.Andi(11, 5, 15),
        Asm.Addi(11, 11, 'A'),
        Asm.Andi(12, 5, 255),
        Asm.Bne(12, 0, 8),
        Asm.Sb(11, 7, 0),
        Asm.Bne(5, 6, -4 * 9),
        Asm.Lui(13, 0x100),                    // the finisher at 0x10_0000
        Asm.Lui(14, 0x5),
        Asm.Addi(14, 14, 0x555),
        Asm.Sw(14, 13, 0),
        Asm.Halt,
    ];

    private static MachineConfiguration Configuration(VirtioDevice device, int harts = 1, ulong memory = 32 * MachineConfiguration.MiB)
    {
        var elf = new TestElfBuilder { Entry = Base };
        var code = MemoryMarshal.AsBytes(Program().AsSpan()).ToArray();
        elf.Segments.Add((Base, code, (ulong)code.Length));
        return new MachineConfiguration
        {
            MemorySize = memory,
            HartCount = harts,
            Firmware = new BootFile("state-test.elf", elf.Build()),
            VirtioDevices = [device],
        };
    }

    private static void CopyRam(VirtualMachine from, VirtualMachine to) =>
        from.Ram.GetSpan(from.Ram.BaseAddress, (int)from.Ram.Size).CopyTo(to.Ram.GetSpan(to.Ram.BaseAddress, (int)to.Ram.Size));

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // saved as snapshot files, RAM mapped from the memory file
    public void A_restored_machine_runs_on_exactly_as_the_saved_one(bool throughFiles)
    {
        var outputA = new ConcurrentQueue<byte>();
        var outputB = new ConcurrentQueue<byte>();
        using var a = VirtualMachine.Boot(Configuration(new VirtioConsole(_ => { })), outputA.Enqueue);
        using var b = VirtualMachine.ForRestore(Configuration(new VirtioConsole(_ => { })), outputB.Enqueue);

        Assert.Throws<InvalidOperationException>(a.SaveState); // not paused
        a.Start();
        Assert.True(SpinWait.SpinUntil(() => outputA.Count >= 50, TimeSpan.FromSeconds(20)), "the program printed nothing");
        a.Pause();
        var state = a.SaveState();
        int printedBefore = outputA.Count;
        Assert.Single(state.Harts);
        Assert.Single(state.Virtio);
        Assert.NotEqual(Base, state.Harts[0].Registers.Pc);

        if (throughFiles)
        {
            RestoreThroughFiles(a, b, state);
        }
        else
        {
            CopyRam(a, b);
            b.RestoreState(state);
        }

        b.Start();
        a.Resume();
        var exitA = a.WaitForExit(TimeSpan.FromSeconds(60));
        var exitB = b.WaitForExit(TimeSpan.FromSeconds(60));
        Assert.Equal(MachineExitReason.PowerOff, exitA?.Reason);
        Assert.Equal(MachineExitReason.PowerOff, exitB?.Reason);

        Assert.Equal(outputA.Skip(printedBefore), outputB);
        Assert.Equal(Iterations / 256, outputA.Count);
        for (int r = 1; r < 32; r++)
        {
            Assert.Equal(a.Harts[0].GetX(r), b.Harts[0].GetX(r));
        }

        Assert.Equal(a.Harts[0].Pc, b.Harts[0].Pc);
        Assert.Equal(a.Harts[0].InstructionsRetired, b.Harts[0].InstructionsRetired);
        Assert.Equal(a.Ram.ReadUInt64(DataAddress), b.Ram.ReadUInt64(DataAddress));
        Assert.True(b.Clock.Now >= state.Clock.Time, "the restored clock went back in time");
    }

    /// <summary>Writes the state and RAM as a snapshot's two files, reads them back and restores <paramref name="to"/> from them.</summary>
    private static void RestoreThroughFiles(VirtualMachine from, VirtualMachine to, MachineState state)
    {
        string dir = Directory.CreateTempSubdirectory("hostvm-vm-snapshot-").FullName;
        try
        {
            string stateFile = Path.Combine(dir, "vm.snap"), memoryFile = Path.Combine(dir, "vm.mem");
            var map = MemoryImage.Write(from.Ram, memoryFile);
            SnapshotFile.WriteFile(stateFile, new SnapshotHeader(SnapshotFile.FormatVersion, Guid.NewGuid(), Guid.Empty, DateTimeOffset.UtcNow),
            [
                new(SnapshotSectionType.MachineState, MachineStateCodec.Encode(state)),
                new(SnapshotSectionType.MemoryMap, map.Encode()),
            ]);

            var (_, sections) = SnapshotFile.ReadFile(stateFile);
            var loaded = MachineStateCodec.Decode(SnapshotFile.Single(sections, SnapshotSectionType.MachineState, stateFile).Span, stateFile);
            Assert.Equal(MachineStateCodec.Encode(state), MachineStateCodec.Encode(loaded)); // nothing lost on the way
            Assert.True(MemoryMap.Decode(SnapshotFile.Single(sections, SnapshotSectionType.MemoryMap, stateFile).Span, stateFile).StoredBytes < from.Ram.Size / 4);
            to.Ram.MapFile(memoryFile);
            to.RestoreState(loaded);
        }
        finally
        {
            Directory.Delete(dir, recursive: true); // the mapping keeps the memory file's pages
        }
    }

    [Fact]
    public void The_golden_snapshot_of_format_version_one_still_restores_and_runs_to_the_end()
    {
        // Written once by format version 1: this test's program paused mid-count (State/Golden/machine-v1.*; the memory
        // file gzipped). Whatever changes later, this snapshot must still load and finish the count it was in.
        string golden = Path.Combine(AppContext.BaseDirectory, "State", "Golden", "machine-v1");
        string dir = Directory.CreateTempSubdirectory("hostvm-golden-").FullName;
        try
        {
            string memoryFile = Path.Combine(dir, "machine-v1.mem");
            using (var packed = new System.IO.Compression.GZipStream(File.OpenRead(golden + ".mem.gz"), System.IO.Compression.CompressionMode.Decompress))
            using (var unpacked = File.Create(memoryFile))
            {
                packed.CopyTo(unpacked);
            }

            var (header, sections) = SnapshotFile.ReadFile(golden + ".snap");
            Assert.Equal(1, header.FormatVersion);
            var state = MachineStateCodec.Decode(SnapshotFile.Single(sections, SnapshotSectionType.MachineState, "golden").Span, "golden");
            var map = MemoryMap.Decode(SnapshotFile.Single(sections, SnapshotSectionType.MemoryMap, "golden").Span, "golden");
            var output = new ConcurrentQueue<byte>();
            using var vm = VirtualMachine.ForRestore(Configuration(new VirtioConsole(_ => { })), output.Enqueue);
            MemoryImage.Load(vm.Ram, memoryFile, map, "golden"); // checks the pages' digest
            vm.RestoreState(state);
            ulong countAtSave = vm.Harts[0].GetX(5);
            Assert.InRange(countAtSave, 1UL, Iterations - 1UL);

            vm.Start();
            Assert.Equal(MachineExitReason.PowerOff, vm.WaitForExit(TimeSpan.FromSeconds(60))?.Reason);
            Assert.Equal((Iterations / 256) - (int)(countAtSave / 256), output.Count);
            ulong expected = 0;
            for (ulong i = 1; i <= Iterations; i++)
            {
                expected ^= i * i;
            }

            Assert.Equal(expected, vm.Harts[0].GetX(10));
            Assert.Equal(expected, vm.Ram.ReadUInt64(DataAddress));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_machine_state_section_that_is_not_one_is_refused()
    {
        var e = Assert.Throws<SnapshotFormatException>(() => MachineStateCodec.Decode("{\"MemorySize\": 1, \"Harts\": [{\"Registers\": \"AAAA\"}]}"u8, "x.snap"));
        Assert.StartsWith("snapshot 'x.snap': the machine state: ", e.Message, StringComparison.Ordinal);
        Assert.Contains("the machine state", Assert.Throws<SnapshotFormatException>(() => MachineStateCodec.Decode("[1, 2]"u8, "x.snap")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_state_for_another_shape_of_machine_is_refused_naming_what_differs()
    {
        using var a = VirtualMachine.Boot(Configuration(new VirtioConsole(_ => { })), _ => { });
        a.Pause();
        var state = a.SaveState();

        using var harts = VirtualMachine.ForRestore(Configuration(new VirtioConsole(_ => { }), harts: 2), _ => { });
        Assert.Contains("1 harts in the state, 2 here", Assert.Throws<ArgumentException>(() => harts.RestoreState(state)).Message, StringComparison.Ordinal);

        using var ram = VirtualMachine.ForRestore(Configuration(new VirtioConsole(_ => { }), memory: 64 * MachineConfiguration.MiB), _ => { });
        Assert.Contains("RAM is 32 MiB in the state, 64 MiB here", Assert.Throws<ArgumentException>(() => ram.RestoreState(state)).Message, StringComparison.Ordinal);

        using var devices = VirtualMachine.ForRestore(Configuration(new VirtioRng()), _ => { });
        Assert.Contains("[Console] in the state, [Entropy] here", Assert.Throws<ArgumentException>(() => devices.RestoreState(state)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_running_machine_is_neither_saved_nor_restored()
    {
        using var a = VirtualMachine.Boot(Configuration(new VirtioConsole(_ => { })), _ => { });
        a.Pause();
        var state = a.SaveState();
        a.Resume();
        a.Start();
        Assert.Throws<InvalidOperationException>(a.SaveState);
        Assert.Throws<InvalidOperationException>(() => a.RestoreState(state));
        a.Stop("done");
    }
}
