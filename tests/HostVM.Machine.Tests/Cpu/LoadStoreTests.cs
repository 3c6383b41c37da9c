using HostVM.Machine.Cpu;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Loads and stores: widths, sign/zero extension, misaligned accesses (HostVM handles them in
/// "hardware", which the spec allows), page-crossing accesses, access faults on addresses where
/// nothing answers (privileged spec: cause 5 / 7, mtval = the faulting address), and MMIO.
/// </summary>
public class LoadStoreTests
{
    private const ulong Base = TestHart.ProgramBase;
    private const ulong Data = TestHart.Data;

    public static TheoryData<string, uint, ulong> LoadCases => new()
    {
        // Data holds 0x8899AABBCCDDEEFF, Data + 8 holds 0x0102030405060708 (little-endian).
        { "lb", Asm.Lb(3, 10, 0), 0xFFFF_FFFF_FFFF_FFFF },
        { "lb +7", Asm.Lb(3, 10, 7), 0xFFFF_FFFF_FFFF_FF88 },
        { "lb positive", Asm.Lb(3, 10, 8), 0x08 },
        { "lbu", Asm.Lbu(3, 10, 0), 0xFF },
        { "lh", Asm.Lh(3, 10, 0), 0xFFFF_FFFF_FFFF_EEFF },
        { "lh positive", Asm.Lh(3, 10, 8), 0x0708 },
        { "lhu", Asm.Lhu(3, 10, 0), 0xEEFF },
        { "lw", Asm.Lw(3, 10, 0), 0xFFFF_FFFF_CCDD_EEFF },
        { "lw positive", Asm.Lw(3, 10, 8), 0x0506_0708 },
        { "lw negative offset", Asm.Lw(3, 11, -12), 0xFFFF_FFFF_8899_AABB },
        { "lwu", Asm.Lwu(3, 10, 0), 0xCCDD_EEFF },
        { "ld", Asm.Ld(3, 10, 0), 0x8899_AABB_CCDD_EEFF },
        { "lh misaligned", Asm.Lh(3, 10, 7), 0x0888 },
        { "lw misaligned", Asm.Lw(3, 10, 1), 0xFFFF_FFFF_BBCC_DDEE },
        { "lwu misaligned", Asm.Lwu(3, 10, 6), 0x0708_8899 },
        { "ld misaligned", Asm.Ld(3, 10, 5), 0x0405_0607_0888_99AA },
    };

    [Theory]
    [MemberData(nameof(LoadCases))]
    public void Load_width_and_extension(string name, uint load, ulong expected)
    {
        using var h = new TestHart();
        h.Poke64(Data, 0x8899_AABB_CCDD_EEFF);
        h.Poke64(Data + 8, 0x0102_0304_0506_0708);
        h.Write(Base, load, Asm.Halt);
        h.SetX(10, Data);
        h.SetX(11, Data + 16);
        h.Run(10);

        h.AssertHaltedAt(Base + 4);
        Assert.True(expected == h.X(3), $"{name}: 0x{h.X(3):x}");
    }

    public static TheoryData<string, uint, ulong, ulong> StoreCases => new()
    {
        // x5 = 0x1122334455667788 stored into memory that held 0xAAAA... at Data, Data + 8.
        { "sb", Asm.Sb(5, 10, 1), 0xAAAA_AAAA_AAAA_88AA, 0xAAAA_AAAA_AAAA_AAAA },
        { "sh", Asm.Sh(5, 10, 2), 0xAAAA_AAAA_7788_AAAA, 0xAAAA_AAAA_AAAA_AAAA },
        { "sw", Asm.Sw(5, 10, 4), 0x5566_7788_AAAA_AAAA, 0xAAAA_AAAA_AAAA_AAAA },
        { "sd", Asm.Sd(5, 10, 8), 0xAAAA_AAAA_AAAA_AAAA, 0x1122_3344_5566_7788 },
        { "sh misaligned", Asm.Sh(5, 10, 7), 0x88AA_AAAA_AAAA_AAAA, 0xAAAA_AAAA_AAAA_AA77 },
        { "sw misaligned", Asm.Sw(5, 10, 6), 0x7788_AAAA_AAAA_AAAA, 0xAAAA_AAAA_AAAA_5566 },
        { "sd misaligned", Asm.Sd(5, 10, 3), 0x4455_6677_88AA_AAAA, 0xAAAA_AAAA_AA11_2233 },
    };

    [Theory]
    [MemberData(nameof(StoreCases))]
    public void Store_writes_exactly_its_bytes(string name, uint store, ulong expectedLow, ulong expectedHigh)
    {
        using var h = new TestHart();
        h.Poke64(Data, 0xAAAA_AAAA_AAAA_AAAA);
        h.Poke64(Data + 8, 0xAAAA_AAAA_AAAA_AAAA);
        h.Write(Base, store, Asm.Halt);
        h.SetX(5, 0x1122_3344_5566_7788);
        h.SetX(10, Data);
        h.Run(10);

        h.AssertHaltedAt(Base + 4);
        Assert.True(expectedLow == h.Peek64(Data), $"{name}: low 0x{h.Peek64(Data):x}");
        Assert.True(expectedHigh == h.Peek64(Data + 8), $"{name}: high 0x{h.Peek64(Data + 8):x}");
    }

    [Fact]
    public void Misaligned_load_and_store_across_a_page_boundary()
    {
        using var h = new TestHart();
        const ulong pageEnd = Data + 0x1000;
        h.Poke64(pageEnd - 8, 0x1122_3344_5566_7788);
        h.Poke64(pageEnd, 0x99AA_BBCC_DDEE_FF00);
        h.Write(Base,
            Asm.Ld(3, 10, -3),          // bytes ...ffd..1004
            Asm.Lw(4, 10, -2),          // bytes ...ffe..1001
            Asm.Sd(5, 10, -5),          // bytes ...ffb..1002
            Asm.Halt);
        h.SetX(5, 0x0102_0304_0506_0708);
        h.SetX(10, pageEnd);
        h.Run(10);

        h.AssertHaltedAt(Base + 12);
        Assert.Equal(0xCCDD_EEFF_0011_2233UL, h.X(3));
        Assert.Equal(0xFFFF_FFFF_FF00_1122UL, h.X(4));
        Assert.Equal(0x0405_0607_0866_7788UL, h.Peek64(pageEnd - 8));
        Assert.Equal(0x99AA_BBCC_DD01_0203UL, h.Peek64(pageEnd));
    }

    [Theory]
    [InlineData(0x4000_0000UL)]
    [InlineData(0x0UL)]
    [InlineData(TestHart.RamBase + TestHart.RamSize)]
    public void Store_where_nothing_answers_is_a_store_access_fault(ulong address)
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Addi(0, 0, 0), Asm.Sd(5, 10, 0), Asm.Halt);
        h.SetX(10, address);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.StoreAccessFault, address, Base + 4);
    }

    [Theory]
    [InlineData(0x4000_0000UL)]
    [InlineData(TestHart.RamBase + TestHart.RamSize)]
    public void Load_where_nothing_answers_is_a_load_access_fault(ulong address)
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Lw(3, 10, 0), Asm.Halt);
        h.SetX(3, 0x1234);
        h.SetX(10, address);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.LoadAccessFault, address, Base);
        Assert.Equal(0x1234UL, h.X(3)); // rd untouched by a faulting load
    }

    [Fact]
    public void Load_partly_outside_ram_faults()
    {
        using var h = new TestHart();
        ulong address = TestHart.RamBase + TestHart.RamSize - 4;
        h.Write(Base, Asm.Ld(3, 10, 0), Asm.Halt);
        h.SetX(10, address);
        h.Run(10);

        Assert.Equal(TestHart.MTrapHalt, h.Pc);
        Assert.Equal((ulong)TrapCause.LoadAccessFault, h.Mcause);
        // mtval: the address of the access or of the portion that faulted (privileged spec, mtval).
        Assert.InRange(h.Mtval, address, address + 7);
    }

    [Fact]
    public void Fetch_where_nothing_answers_is_an_instruction_access_fault()
    {
        using var h = new TestHart();
        h.Write(Base, Asm.Jalr(1, 10, 0), Asm.Halt);
        h.SetX(10, 0x4000_0000);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.InstructionAccessFault, 0x4000_0000, 0x4000_0000);
        Assert.Equal(Base + 4, h.X(1));
    }

    [Fact]
    public void Mmio_accesses_reach_the_device_with_offset_size_and_value()
    {
        using var h = new TestHart();
        var device = new FakeMmioDevice();
        const ulong mmio = 0x1000_0000;
        h.Bus.Map(mmio, FakeMmioDevice.Size, device);
        h.Write(Base,
            Asm.Sw(5, 10, 0x10),
            Asm.Lw(3, 10, 0x10),        // sign-extends what the device returns
            Asm.Lbu(4, 10, 0x13),
            Asm.Sd(5, 10, 0x20),
            Asm.Ld(6, 10, 0x20),
            Asm.Sh(5, 10, 0x30),
            Asm.Halt);
        h.SetX(5, 0x1122_3344_F566_7788);
        h.SetX(10, mmio);
        h.Run(20);

        h.AssertHaltedAt(Base + 24);
        Assert.Equal(0xFFFF_FFFF_F566_7788UL, h.X(3));
        Assert.Equal(0xF5UL, h.X(4));
        Assert.Equal(0x1122_3344_F566_7788UL, h.X(6));
        Assert.Equal(
            [
                (true, 0x10UL, 4, 0xF566_7788UL),
                (false, 0x10UL, 4, 0xF566_7788UL),
                (false, 0x13UL, 1, 0xF5UL),
                (true, 0x20UL, 8, 0x1122_3344_F566_7788UL),
                (false, 0x20UL, 8, 0x1122_3344_F566_7788UL),
                (true, 0x30UL, 2, 0x7788UL),
            ],
            device.Accesses.Select(a => (a.IsWrite, a.Offset, a.Size, a.Size == 8 ? a.Value : a.Value & ((1UL << (8 * a.Size)) - 1))));
    }

    [Fact]
    public void Fetch_of_an_instruction_whose_second_half_is_outside_ram_reports_that_half()
    {
        // Privileged spec, mtval: with variable-length instructions mtval holds the address of the
        // portion of the instruction that faulted, while mepc points to its beginning.
        using var h = new TestHart();
        const ulong last = TestHart.RamBase + TestHart.RamSize - 2;
        h.WriteHalves(last, Asm.Halves(Asm.Addi(5, 5, 1))[0]);
        h.Write(Base, Asm.Jalr(0, 10, 0));
        h.SetX(10, last);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.InstructionAccessFault, last + 2, last);
        Assert.Equal(0UL, h.X(5));
    }
}
