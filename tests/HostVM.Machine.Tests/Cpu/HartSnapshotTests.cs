using System.Runtime.InteropServices;
using HostVM.Machine.Cpu;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// A hart's state round-trips: a random program runs for a random while, the hart is saved and restored
/// into a fresh hart over a copy of RAM, and both finish the program in the same state.
/// </summary>
public sealed class HartSnapshotTests
{
    private const int Loops = 40;

    /// <summary>
    /// A loop of random arithmetic, loads and stores (to the data page, base x20), an LR/SC pair and
    /// scratch CSR writes over x5..x15, run <see cref="Loops"/> times (counter x31), then ECALL (to the halt loop).
    /// </summary>
    private static uint[] Program(Random random)
    {
        var body = new List<uint>();
        int Reg() => random.Next(5, 16);
        for (int i = 0; i < 40; i++)
        {
            body.Add(random.Next(10) switch
            {
                0 => Asm.Add(Reg(), Reg(), Reg()),
                1 => Asm.Sub(Reg(), Reg(), Reg()),
                2 => Asm.Mul(Reg(), Reg(), Reg()),
                3 => Asm.Xor(Reg(), Reg(), Reg()),
                4 => Asm.Addi(Reg(), Reg(), random.Next(-2048, 2048)),
                5 => Asm.Sd(Reg(), 20, 8 * random.Next(64)),
                6 => Asm.Ld(Reg(), 20, 8 * random.Next(64)),
                7 => Asm.Csrrw(Reg(), random.Next(2) == 0 ? Csr.Mscratch : Csr.Sscratch, Reg()),
                8 => Asm.LrD(Reg(), 20),
                _ => Asm.ScD(Reg(), 20, Reg()),
            });
        }

        body.Add(Asm.Addi(31, 31, -1));
        body.Add(Asm.Bne(31, 0, -4L * body.Count));
        body.Add(Asm.Ecall());
        return [.. body];
    }

    private static TestHart Start(int seed)
    {
        var random = new Random(seed);
        var t = new TestHart();
        t.Write(TestHart.ProgramBase, Program(random));
        for (int r = 5; r < 16; r++)
        {
            t.Hart.SetX(r, (ulong)random.NextInt64());
        }

        t.Hart.SetX(20, TestHart.Data);
        t.Hart.SetX(31, Loops);
        return t;
    }

    private static byte[] Bytes(HartState state, bool withCounters)
    {
        if (!withCounters)
        {
            state.Instret = 0; // the halt loop retires instructions for as long as Run lets it
            state.CycleOffset = 0;
        }

        return MemoryMarshal.AsBytes(new ReadOnlySpan<HartState>(ref state)).ToArray();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    public void A_restored_hart_finishes_the_program_as_the_saved_one(int seed)
    {
        using var a = Start(seed);
        using var b = new TestHart();
        var split = new Random(seed + 1000);
        for (int round = 0; round < 5; round++)
        {
            a.Run((ulong)split.Next(1, 400));

            var saved = a.Hart.SaveState();
            a.Ram.GetSpan(TestHart.RamBase, (int)TestHart.RamSize).CopyTo(b.Ram.GetSpan(TestHart.RamBase, (int)TestHart.RamSize));
            b.Code.Clear();
            b.Hart.RestoreState(saved);

            var back = b.Hart.SaveState();
            Assert.Equal(Bytes(saved.Registers, true), Bytes(back.Registers, true));
            Assert.Equal(saved with { Registers = default }, back with { Registers = default });
            Assert.Equal(a.Hart.Pc, b.Hart.Pc);
        }

        a.Run(100_000);
        b.Run(100_000);
        a.AssertHaltedAt(TestHart.MTrapHalt);
        b.AssertHaltedAt(TestHart.MTrapHalt);
        Assert.Equal(Bytes(a.Hart.State, false), Bytes(b.Hart.State, false));
        Assert.True(a.Ram.GetSpan(TestHart.Data, 4096).SequenceEqual(b.Ram.GetSpan(TestHart.Data, 4096)));
    }

    [Fact]
    public void The_run_state_and_a_pending_stop_go_with_the_hart()
    {
        using var a = new TestHart();
        using var b = new TestHart();
        a.Hart.MarkStopped();
        var stopped = a.Hart.SaveState();
        b.Hart.RestoreState(stopped);
        Assert.Equal(HartRunState.Stopped, b.Hart.RunState);

        using var c = new TestHart();
        c.Hart.StopSelf();
        var stopping = c.Hart.SaveState();
        Assert.True(stopping.StopSelfPending);
        b.Hart.RestoreState(stopping);
        Assert.Equal(HartRunState.Started, b.Hart.RunState);
        Assert.True(b.Hart.SaveState().StopSelfPending);
    }
}
