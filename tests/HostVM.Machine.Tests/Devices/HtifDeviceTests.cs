using HostVM.Machine.Devices;

namespace HostVM.Machine.Tests.Devices;

public class HtifDeviceTests
{
    private const ulong ToHost = 0x8000_1000;
    private const ulong FromHost = 0x8000_1040; // riscv-tests align each word to 64 bytes

    private readonly List<int> _exits = [];
    private readonly List<byte> _output = [];
    private readonly HtifDevice _htif;

    public HtifDeviceTests()
    {
        _htif = new HtifDevice(ToHost, FromHost, _exits.Add, _output.Add);
    }

    private ulong ToHostOffset => ToHost - _htif.WindowBase;

    private ulong FromHostOffset => FromHost - _htif.WindowBase;

    [Fact]
    public void Window_covers_both_words()
    {
        Assert.Equal(ToHost, _htif.WindowBase);
        Assert.Equal(0x48UL, _htif.WindowSize);

        var reversed = new HtifDevice(0x8000_2008, 0x8000_2000, _ => { }, _ => { });
        Assert.Equal(0x8000_2000UL, reversed.WindowBase);
        Assert.Equal(16UL, reversed.WindowSize);

        var alone = new HtifDevice(0x8000_2000, null, _ => { }, _ => { });
        Assert.Equal(8UL, alone.WindowSize);
    }

    [Fact]
    public void Bad_addresses_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new HtifDevice(0x8000_0004, null, _ => { }, _ => { }));
        Assert.Throws<ArgumentException>(() => new HtifDevice(0x8000_0000, 0x8000_0000, _ => { }, _ => { }));
        Assert.Throws<ArgumentException>(() => new HtifDevice(0x8000_0000, 0x8010_0000, _ => { }, _ => { }));
    }

    [Theory]
    [InlineData(1UL, 0)]
    [InlineData((5UL << 1) | 1, 5)]
    [InlineData((1234UL << 1) | 1, 1234)]
    public void Exit_command(ulong value, int code)
    {
        _htif.Write(ToHostOffset, 8, value);
        Assert.Equal([code], _exits);
        Assert.Equal(0UL, _htif.Read(ToHostOffset, 8));
    }

    [Fact]
    public void Exit_by_two_32bit_halves_low_then_high()
    {
        _htif.Write(ToHostOffset, 4, (3 << 1) | 1);
        Assert.Empty(_exits);
        _htif.Write(ToHostOffset + 4, 4, 0);
        Assert.Equal([3], _exits);
    }

    [Fact]
    public void Putchar_outputs_and_acknowledges_in_fromhost()
    {
        ulong command = (1UL << 56) | (1UL << 48) | 'A';
        _htif.Write(ToHostOffset, 8, command);

        Assert.Equal([(byte)'A'], _output);
        Assert.Equal(0UL, _htif.Read(ToHostOffset, 8));
        Assert.Equal((1UL << 56) | (1UL << 48) | 0x100 | 'A', _htif.Read(FromHostOffset, 8));
        Assert.Empty(_exits);

        _htif.Write(FromHostOffset, 8, 0); // the guest consumes the acknowledgement
        Assert.Equal(0UL, _htif.Read(FromHostOffset, 8));
    }

    [Fact]
    public void Putchar_by_halves()
    {
        _htif.Write(ToHostOffset, 4, 'z');
        _htif.Write(ToHostOffset + 4, 4, (1u << 24) | (1u << 16));
        Assert.Equal([(byte)'z'], _output);
    }

    [Theory]
    [InlineData(2UL)] // syscall proxy (payload is a pointer): not provided
    [InlineData((1UL << 56) | 'x')] // console read
    [InlineData((7UL << 56) | (1UL << 48) | 'x')]
    public void Other_commands_are_consumed_and_ignored(ulong value)
    {
        _htif.Write(ToHostOffset, 8, value);
        Assert.Empty(_exits);
        Assert.Empty(_output);
        Assert.Equal(0UL, _htif.Read(ToHostOffset, 8));
    }

    [Fact]
    public void Bytes_between_the_words_are_plain_memory()
    {
        _htif.Write(0x10, 4, 0xDEAD_BEEF);
        Assert.Equal(0xDEAD_BEEFUL, _htif.Read(0x10, 4));
        _htif.Write(_htif.WindowSize - 2, 8, 1); // runs past the window: ignored
        Assert.Equal(0UL, _htif.Read(_htif.WindowSize, 1));
    }
}
