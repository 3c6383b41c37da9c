using HostVM.Machine.Boot;

namespace HostVM.Machine.Tests.Boot;

public class PayloadLoaderTests
{
    private const ulong RamBase = 0x8000_0000;
    private const string OpenSbiElf = "/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.elf";

    [Fact]
    public void Detects_elf_image_and_raw()
    {
        Assert.Equal(PayloadKind.Elf, PayloadLoader.Detect(TestElfBuilder.Sample().Build()));
        Assert.Equal(PayloadKind.LinuxImage, PayloadLoader.Detect(LinuxImageTests.SampleImage()));
        Assert.Equal(PayloadKind.Raw, PayloadLoader.Detect([0x97, 0x02, 0x00, 0x00]));
        Assert.Equal(PayloadKind.Raw, PayloadLoader.Detect([]));
    }

    [Fact]
    public void Each_kind_goes_where_it_belongs()
    {
        var elf = PayloadLoader.Load("test.elf", TestElfBuilder.Sample().Build(), RamBase, address: 0x9000_0000);
        Assert.Equal(0x8000_0004UL, elf.Entry); // the ELF's own addresses win
        Assert.Equal(0x8000_0000UL, elf.LoadAddress);

        var kernel = PayloadLoader.Load("kernel", LinuxImageTests.SampleImage(), RamBase);
        Assert.Equal(0x8020_0000UL, kernel.LoadAddress);
        Assert.Equal(0x8020_0000UL, kernel.Entry);

        var firmware = PayloadLoader.Load("firmware", new byte[] { 1, 2, 3, 4 }, RamBase);
        Assert.Equal(RamBase, firmware.LoadAddress);
        Assert.Equal(RamBase + 4, firmware.End);

        var initrd = PayloadLoader.Load("initrd", new byte[] { 1, 2, 3, 4 }, RamBase, address: 0x8820_0000);
        Assert.Equal(0x8820_0000UL, initrd.LoadAddress);

        Assert.Equal("initrd: is empty", Assert.Throws<BootImageException>(() => PayloadLoader.Load("initrd", Array.Empty<byte>(), RamBase)).Message);
    }

    [Fact]
    public void Real_opensbi_firmware_elf_loads()
    {
        Assert.True(File.Exists(OpenSbiElf), $"{OpenSbiElf} is missing: install it with `apt-get install opensbi`");
        var payload = PayloadLoader.Load(Path.GetFileName(OpenSbiElf), File.ReadAllBytes(OpenSbiElf), RamBase);

        Assert.Equal("opensbi-riscv64-generic-fw_dynamic.elf", payload.Name);
        Assert.Equal(RamBase, payload.Entry);
        Assert.Equal(RamBase, payload.LoadAddress);
        Assert.True(payload.End > RamBase + 0x1_0000 && payload.End < RamBase + 0x20_0000);
        BootLayout.Validate([payload], RamBase, 0x800_0000);
    }
}
