namespace HostVM.Machine.Boot;

/// <summary>What a boot file turned out to be.</summary>
public enum PayloadKind
{
    /// <summary>An ELF executable: it says where its segments go and where it starts.</summary>
    Elf,

    /// <summary>A RISC-V Linux kernel Image (arch/riscv/boot/Image), loaded 2 MiB-aligned in RAM.</summary>
    LinuxImage,

    /// <summary>Raw bytes (firmware .bin, initrd): loaded where the caller says.</summary>
    Raw,
}
