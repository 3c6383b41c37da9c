namespace HostVM.Machine.Boot;

/// <summary>
/// What the device tree tells the guest about a HostVM virt board. The fixed devices (CLINT, PLIC, UART,
/// power, RTC) are always present at their QEMU virt addresses; the rest comes from here.
/// </summary>
/// <param name="HartCount">Number of harts (hart ids 0 .. HartCount - 1).</param>
/// <param name="RamBase">Guest physical address of RAM (0x8000_0000 on virt).</param>
/// <param name="RamSize">Bytes of RAM.</param>
/// <param name="IsaString">The harts' riscv,isa, e.g. "rv64imafdc_zicsr_zifencei_zicntr".</param>
/// <param name="MmuType">The harts' mmu-type, e.g. "riscv,sv39", "riscv,sv48", "riscv,sv57".</param>
public sealed record VirtBoardDescription(int HartCount, ulong RamBase, ulong RamSize, string IsaString, string MmuType)
{
    public const string DefaultStdoutPath = "/soc/serial@10000000";

    /// <summary>Kernel command line (/chosen/bootargs); null leaves it out.</summary>
    public string? BootArgs { get; init; }

    /// <summary>Start of the initrd in guest RAM; set together with <see cref="InitrdEnd"/>.</summary>
    public ulong? InitrdStart { get; init; }

    /// <summary>End (exclusive) of the initrd in guest RAM.</summary>
    public ulong? InitrdEnd { get; init; }

    public uint TimebaseFrequency { get; init; } = 10_000_000;

    public IReadOnlyList<VirtioMmioSlot> VirtioSlots { get; init; } = [];

    public string StdoutPath { get; init; } = DefaultStdoutPath;

    /// <summary>Bytes for /chosen/rng-seed; null means 32 fresh random bytes.</summary>
    public ReadOnlyMemory<byte>? RngSeed { get; init; }
}
