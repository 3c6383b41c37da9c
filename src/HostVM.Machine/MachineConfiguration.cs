namespace HostVM.Machine;

/// <summary>What a machine is made of: RAM, harts and what it boots.</summary>
public sealed record MachineConfiguration
{
    public const ulong MiB = 1024 * 1024;
    public const int MaxHarts = 8;

    public ulong MemorySize { get; init; } = 256 * MiB;

    public int HartCount { get; init; } = 1;

    /// <summary>M-mode firmware (OpenSBI fw_jump/fw_dynamic) or a bare-metal program; null = built-in SBI.</summary>
    public BootFile? Firmware { get; init; }

    /// <summary>A Linux <c>Image</c> or an ELF kernel; null with a firmware = bare-metal program.</summary>
    public BootFile? Kernel { get; init; }

    public BootFile? Initrd { get; init; }

    public string? KernelCommandLine { get; init; }

    /// <summary>8 = Sv39, 9 = Sv48, 10 = Sv57: the deepest paging mode the harts accept.</summary>
    public int MaxSatpMode { get; init; } = 10;
}
