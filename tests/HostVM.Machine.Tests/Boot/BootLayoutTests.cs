using HostVM.Machine.Boot;
using HostVM.Machine.Memory;

namespace HostVM.Machine.Tests.Boot;

public class BootLayoutTests
{
    private const ulong RamBase = 0x8000_0000;

    private static BootPayload Payload(string name, ulong address, ulong memorySize, int dataLength = 16) =>
        new(name, address, [new BootSegment(address, new byte[dataLength], memorySize)]);

    [Fact]
    public void Payloads_that_fit_and_do_not_overlap_pass()
    {
        BootLayout.Validate(
        [
            Payload("firmware", RamBase, 0x4_0000),
            Payload("kernel", 0x8020_0000, 0x200_0000),
            Payload("initrd", 0x8820_0000, 0x10_0000),
        ], RamBase, 0x1000_0000);
    }

    [Fact]
    public void Overlap_names_both_payloads_and_ranges()
    {
        var e = Assert.Throws<BootImageException>(() => BootLayout.Validate(
        [
            Payload("kernel", 0x8020_0000, 0xA20_0000),
            Payload("initrd", 0x8820_0000, 0x1E0_0000),
        ], RamBase, 0x1000_0000));

        Assert.StartsWith("initrd 0x88200000-0x8a000000 overlaps kernel 0x80200000-0x8a400000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Payload_past_the_end_of_ram_suggests_a_memory_size()
    {
        var e = Assert.Throws<BootImageException>(() => BootLayout.Validate(
            [Payload("kernel Image", 0x8020_0000, 0x200_0000)], RamBase, 0x100_0000));

        Assert.Equal("kernel Image needs 0x2000000 bytes at 0x80200000 but RAM ends at 0x81000000: use --memory 64M or more", e.Message);
    }

    [Fact]
    public void Large_suggestions_are_in_gigabytes()
    {
        var e = Assert.Throws<BootImageException>(() => BootLayout.Validate(
            [Payload("initrd", 0xC000_0000, 0x1000_0000)], RamBase, 0x4000_0000));
        Assert.EndsWith("use --memory 2G or more", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Payload_below_ram_is_refused()
    {
        var e = Assert.Throws<BootImageException>(() => BootLayout.Validate([Payload("bios", 0x1000, 0x100)], RamBase, 0x1000_0000));
        Assert.Equal("bios needs 0x100 bytes at 0x1000 but RAM starts at 0x80000000: it must be linked or loaded at 0x80000000 or above", e.Message);
    }

    [Fact]
    public void Gaps_between_elf_segments_may_hold_another_payload()
    {
        var elf = new BootPayload("prog.elf", RamBase,
        [
            new BootSegment(RamBase, new byte[16], 0x1000),
            new BootSegment(RamBase + 0x10_0000, new byte[16], 0x1000),
        ]);
        BootLayout.Validate([elf, Payload("dtb", RamBase + 0x8000, 0x1000)], RamBase, 0x100_0000);
    }

    [Fact]
    public void Copy_writes_data_and_zeroes_the_rest()
    {
        using var ram = new GuestRam(0x10_0000, RamBase);
        ram.GetSpan(RamBase, 0x10_0000).Fill(0xCC);
        var payload = new BootPayload("prog.elf", RamBase, [new BootSegment(RamBase + 0x100, new byte[] { 1, 2, 3 }, 0x10)]);

        payload.CopyTo(ram);

        Assert.Equal(0xCC, ram.GetSpan(RamBase + 0xFF, 1)[0]);
        Assert.Equal([1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], ram.GetSpan(RamBase + 0x100, 16).ToArray());
        Assert.Equal(0xCC, ram.GetSpan(RamBase + 0x110, 1)[0]);

        var outside = Payload("kernel", RamBase + 0xF_FF00, 0x200);
        Assert.Throws<BootImageException>(() => outside.CopyTo(ram));
    }
}
