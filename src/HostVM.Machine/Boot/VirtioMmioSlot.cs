namespace HostVM.Machine.Boot;

/// <summary>A virtio-mmio transport window present on the board: its base address and PLIC source.</summary>
public sealed record VirtioMmioSlot(ulong Base, int Irq)
{
    /// <summary>Every virtio-mmio window is 4 KiB (as on QEMU's virt board, from 0x1000_1000 up).</summary>
    public const ulong Size = 0x1000;

    /// <summary>QEMU virt's first slot; slot n is at FirstBase + n * Size with irq FirstIrq + n.</summary>
    public const ulong FirstBase = 0x1000_1000;

    public const int FirstIrq = 1;
}
