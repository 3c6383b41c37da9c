using HostVM.Machine.Cpu;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// The A extension (unprivileged spec, "A" chapter): LR/SC reservations, every AMO with the value
/// it returns, .W forms sign-extending and touching only 32 bits, misaligned AMOs trapping, and
/// atomicity between two harts running on two host threads.
/// </summary>
public class AtomicTests
{
    private const ulong Base = TestHart.ProgramBase;
    private const ulong Data = TestHart.Data;

    [Fact]
    public void Lr_then_sc_to_the_same_address_succeeds_and_stores()
    {
        using var h = new TestHart();
        h.Poke64(Data, 0x0000_0001_7FFF_FFFF);
        h.Write(Base,
            Asm.LrW(3, 10),
            Asm.Addi(3, 3, 1),
            Asm.ScW(4, 10, 3),
            Asm.Halt);
        h.SetX(4, 0x55);
        h.SetX(10, Data);
        h.Run(10);

        h.AssertHaltedAt(Base + 12);
        Assert.Equal(0UL, h.X(4));                              // 0 = success
        Assert.Equal(0x0000_0001_8000_0000UL, h.Peek64(Data)); // only the low word changed
    }

    [Fact]
    public void Lr_d_then_sc_d_succeeds()
    {
        using var h = new TestHart();
        h.Poke64(Data + 8, 0xFFFF_FFFF_FFFF_FFFF);
        h.Write(Base,
            Asm.LrD(3, 10),
            Asm.Addi(3, 3, 2),
            Asm.ScD(4, 10, 3),
            Asm.Halt);
        h.SetX(10, Data + 8);
        h.Run(10);

        h.AssertHaltedAt(Base + 12);
        Assert.Equal(0UL, h.X(4));
        Assert.Equal(1UL, h.Peek64(Data + 8));
    }

    [Fact]
    public void Lr_w_sign_extends()
    {
        using var h = new TestHart();
        h.Poke64(Data, 0x1234_5678_8000_0000);
        h.Write(Base, Asm.LrW(3, 10), Asm.Halt);
        h.SetX(10, Data);
        h.Run(10);

        Assert.Equal(0xFFFF_FFFF_8000_0000UL, h.X(3));
    }

    [Fact]
    public void Sc_without_a_reservation_fails_and_does_not_store()
    {
        using var h = new TestHart();
        h.Poke64(Data, 0x1111_1111_1111_1111);
        h.Write(Base, Asm.ScD(4, 10, 5), Asm.ScW(6, 10, 5), Asm.Halt);
        h.SetX(5, 0x2222_2222_2222_2222);
        h.SetX(10, Data);
        h.Run(10);

        h.AssertHaltedAt(Base + 8);
        Assert.NotEqual(0UL, h.X(4));
        Assert.NotEqual(0UL, h.X(6));
        Assert.Equal(0x1111_1111_1111_1111UL, h.Peek64(Data));
    }

    [Fact]
    public void Sc_to_another_address_than_the_lr_fails_and_does_not_store()
    {
        using var h = new TestHart();
        h.Poke64(Data, 5);
        h.Poke64(Data + 0x100, 5);
        h.Write(Base,
            Asm.LrW(3, 10),
            Asm.ScW(4, 11, 5),
            Asm.Halt);
        h.SetX(5, 9);
        h.SetX(10, Data);
        h.SetX(11, Data + 0x100);
        h.Run(10);

        h.AssertHaltedAt(Base + 8);
        Assert.NotEqual(0UL, h.X(4));
        Assert.Equal(5UL, h.Peek64(Data + 0x100));
        Assert.Equal(5UL, h.Peek64(Data));
    }

    [Fact]
    public void Any_sc_ends_the_reservation_so_a_second_sc_fails()
    {
        using var h = new TestHart();
        h.Write(Base,
            Asm.LrD(3, 10),
            Asm.ScD(4, 10, 5),
            Asm.ScD(6, 10, 7),
            Asm.Halt);
        h.SetX(5, 1);
        h.SetX(7, 2);
        h.SetX(10, Data);
        h.Run(10);

        h.AssertHaltedAt(Base + 12);
        Assert.Equal(0UL, h.X(4));
        Assert.NotEqual(0UL, h.X(6));
        Assert.Equal(1UL, h.Peek64(Data));
    }

    [Fact]
    public void Sc_fails_when_another_store_changed_the_reserved_word()
    {
        using var h = new TestHart();
        h.Poke64(Data, 10);
        h.Write(Base,
            Asm.LrD(3, 10),
            Asm.Sd(8, 10, 0),           // this hart's own store of a different value
            Asm.ScD(4, 10, 5),
            Asm.Halt);
        h.SetX(5, 77);
        h.SetX(8, 11);
        h.SetX(10, Data);
        h.Run(10);

        h.AssertHaltedAt(Base + 12);
        // The spec lets an SC after a same-hart store to the reservation set succeed or fail,
        // but whatever it reports must match memory.
        Assert.Equal(h.X(4) == 0 ? 77UL : 11UL, h.Peek64(Data));
    }

    public static TheoryData<string, uint, bool, ulong, ulong, ulong> AmoCases => new()
    {
        // name, funct5, doubleword, memory before, rs2, memory after (rd = memory before, sign-extended for .w)
        { "amoswap.w", Asm.AmoSwap, false, 0x8000_0001, 0x1234_5678_0000_0005, 5 },
        { "amoadd.w", Asm.AmoAdd, false, 0x7FFF_FFFF, 1, 0x8000_0000 },
        { "amoadd.w wraps", Asm.AmoAdd, false, 0xFFFF_FFFF, 0xFFFF_FFFF_0000_0002, 1 },
        { "amoxor.w", Asm.AmoXor, false, 0xF0F0_F0F0, 0xFF00_FF00, 0x0FF0_0FF0 },
        { "amoand.w", Asm.AmoAnd, false, 0xF0F0_F0F0, 0xFF00_FF00, 0xF000_F000 },
        { "amoor.w", Asm.AmoOr, false, 0xF0F0_F0F0, 0x0F00_0000, 0xFFF0_F0F0 },
        { "amomin.w", Asm.AmoMin, false, 0xFFFF_FFFF, 1, 0xFFFF_FFFF },                   // -1 < 1
        { "amomin.w uses rs2[31:0]", Asm.AmoMin, false, 5, 0x0000_0001_8000_0000, 0x8000_0000 },
        { "amomax.w", Asm.AmoMax, false, 0xFFFF_FFFF, 1, 1 },
        { "amominu.w", Asm.AmoMinu, false, 0xFFFF_FFFF, 1, 1 },
        { "amomaxu.w", Asm.AmoMaxu, false, 0xFFFF_FFFF, 1, 0xFFFF_FFFF },
        { "amoswap.d", Asm.AmoSwap, true, 0x8000_0000_0000_0001, 0x1234_5678_9ABC_DEF0, 0x1234_5678_9ABC_DEF0 },
        { "amoadd.d", Asm.AmoAdd, true, 0xFFFF_FFFF_FFFF_FFFF, 1, 0 },
        { "amoxor.d", Asm.AmoXor, true, 0xF0F0_F0F0_0000_FFFF, 0xFF00_FF00_FFFF_FFFF, 0x0FF0_0FF0_FFFF_0000 },
        { "amoand.d", Asm.AmoAnd, true, 0xF0F0_F0F0_0000_FFFF, 0xFF00_FF00_FFFF_FFFF, 0xF000_F000_0000_FFFF },
        { "amoor.d", Asm.AmoOr, true, 0xF0F0_F0F0_0000_FFFF, 0x0F00_0000_1000_0000, 0xFFF0_F0F0_1000_FFFF },
        { "amomin.d", Asm.AmoMin, true, 0x8000_0000_0000_0000, 1, 0x8000_0000_0000_0000 },
        { "amomax.d", Asm.AmoMax, true, 0x8000_0000_0000_0000, 1, 1 },
        { "amominu.d", Asm.AmoMinu, true, 0x8000_0000_0000_0000, 1, 1 },
        { "amomaxu.d", Asm.AmoMaxu, true, 0x8000_0000_0000_0000, 1, 0x8000_0000_0000_0000 },
        { "amomax.d equal", Asm.AmoMax, true, 7, 7, 7 },
    };

    [Theory]
    [MemberData(nameof(AmoCases))]
    public void Amo_stores_the_result_and_returns_the_old_value(string name, uint funct5, bool doubleword, ulong before, ulong rs2, ulong after)
    {
        using var h = new TestHart();
        h.Poke64(Data, doubleword ? before : 0xCAFE_BABE_0000_0000 | before);
        h.Write(Base, Asm.Amo(funct5, doubleword, 3, 10, 11), Asm.Halt);
        h.SetX(10, Data);
        h.SetX(11, rs2);
        h.Run(10);

        h.AssertHaltedAt(Base + 4);
        ulong expectedRd = doubleword ? before : (ulong)(long)(int)(uint)before;
        Assert.True(expectedRd == h.X(3), $"{name}: rd = 0x{h.X(3):x}");
        ulong expectedMemory = doubleword ? after : 0xCAFE_BABE_0000_0000 | (uint)after;
        Assert.True(expectedMemory == h.Peek64(Data), $"{name}: memory = 0x{h.Peek64(Data):x}");
    }

    [Fact]
    public void Amo_with_rd_equal_rs2_returns_the_old_value_and_stores_the_new()
    {
        using var h = new TestHart();
        h.Poke64(Data, 40);
        h.Write(Base, Asm.Amo(Asm.AmoAdd, true, 11, 10, 11), Asm.Halt);
        h.SetX(10, Data);
        h.SetX(11, 2);
        h.Run(10);

        Assert.Equal(40UL, h.X(11));
        Assert.Equal(42UL, h.Peek64(Data));
    }

    [Theory]
    [InlineData(false, 2)]
    [InlineData(true, 4)]
    [InlineData(true, 1)]
    public void Misaligned_amo_raises_store_address_misaligned(bool doubleword, int offset)
    {
        using var h = new TestHart();
        h.Poke64(Data, 0x1111_1111_1111_1111);
        h.Poke64(Data + 8, 0x1111_1111_1111_1111);
        h.Write(Base, Asm.Nop, Asm.Amo(Asm.AmoAdd, doubleword, 3, 10, 11), Asm.Halt);
        h.SetX(10, Data + (ulong)offset);
        h.SetX(11, 1);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.StoreMisaligned, Data + (ulong)offset, Base + 4);
        Assert.Equal(0x1111_1111_1111_1111UL, h.Peek64(Data));
        Assert.Equal(0x1111_1111_1111_1111UL, h.Peek64(Data + 8));
    }

    [Fact]
    public void Misaligned_sc_raises_store_address_misaligned()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.ScW(3, 10, 11), Asm.Halt);
        h.SetX(10, Data + 2);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.StoreMisaligned, Data + 2, Base);
    }

    [Fact]
    public void Misaligned_lr_raises_a_load_exception()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.LrD(3, 10), Asm.Halt);
        h.SetX(10, Data + 4);
        h.Run(10);

        Assert.Equal(TestHart.MTrapHalt, h.Pc);
        // "an address-misaligned exception or an access-fault exception will be generated"
        Assert.Contains(h.Mcause, new[] { (ulong)TrapCause.LoadMisaligned, (ulong)TrapCause.LoadAccessFault });
        Assert.Equal(Data + 4, h.Mtval);
    }

    [Fact]
    public void Two_harts_on_two_threads_amoadd_the_same_word_exactly()
    {
        const int iterations = 100_000;
        using var h = new TestHart();
        using var second = new Hart(1, h.Bus, h.Code, h.Clock);
        h.Write(Base,
            Asm.AmoaddW(0, 10, 6),
            Asm.Addi(7, 7, -1),
            Asm.Bne(7, 0, -8),
            Asm.Halt);
        foreach (var hart in new[] { h.Hart, second })
        {
            hart.SetX(6, 1);
            hart.SetX(7, iterations);
            hart.SetX(10, Data);
        }

        RunTogether(h.Hart, second, (3 * iterations) + 100);

        Assert.Equal(2U * iterations, h.Peek32(Data));
        Assert.Equal(Base + 12, h.Hart.Pc);
        Assert.Equal(Base + 12, second.Pc);
    }

    [Fact]
    public void Two_harts_incrementing_with_lr_sc_loops_lose_no_update()
    {
        const int iterations = 20_000;
        using var h = new TestHart();
        using var second = new Hart(1, h.Bus, h.Code, h.Clock);
        h.Write(Base,
            Asm.LrD(3, 10),             // retry:
            Asm.Addi(3, 3, 1),
            Asm.ScD(4, 10, 3),
            Asm.Bne(4, 0, -12),         //   sc failed: retry
            Asm.Addi(7, 7, -1),
            Asm.Bne(7, 0, -20),
            Asm.Halt);
        foreach (var hart in new[] { h.Hart, second })
        {
            hart.SetX(7, iterations);
            hart.SetX(10, Data);
        }

        RunTogether(h.Hart, second, 40 * iterations);

        Assert.Equal(Base + 24, h.Hart.Pc);
        Assert.Equal(Base + 24, second.Pc);
        Assert.Equal(2UL * iterations, h.Peek64(Data));
    }

    private static void RunTogether(Hart a, Hart b, ulong budget)
    {
        using var start = new Barrier(2);
        var threads = new[] { a, b }.Select(hart => new Thread(() =>
        {
            start.SignalAndWait();
            hart.Run(budget);
        })).ToArray();
        foreach (var t in threads)
        {
            t.Start();
        }

        foreach (var t in threads)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(30)), "a hart did not finish its budget");
        }
    }
}
