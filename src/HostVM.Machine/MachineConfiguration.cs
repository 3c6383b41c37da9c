using HostVM.Machine.Virtio;

namespace HostVM.Machine;

/// <summary>What a machine is made of: RAM, harts and what it boots.</summary>
public sealed record MachineConfiguration
{
    public const ulong MiB = 1024 * 1024;
    public const int MaxHarts = 8;
    public const int MaxVirtioDevices = 8;

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

    /// <summary>
    /// Virtio devices, one per virtio-mmio slot in this order (slot n at 0x1000_1000 + n × 0x1000, irq 1 + n).
    /// The machine owns them from here on and disposes them with itself.
    /// </summary>
    public IReadOnlyList<VirtioDevice> VirtioDevices { get; init; } = [];

    /// <summary>Use the legacy (version 1) virtio-mmio transport, as QEMU 7.2 does by default.</summary>
    public bool VirtioLegacy { get; init; }

    /// <summary>
    /// The most host CPU each hart may use, as a percentage of one host core (1 to 100; null or 100 =
    /// uncapped). Time a hart sleeps in WFI is not CPU use. <see cref="VirtualMachine.SetCpuCap"/> changes it while the VM runs.
    /// </summary>
    public int? CpuCapPercent { get; init; }

    /// <summary>
    /// The most host memory decoded guest code may take (<see cref="Cpu.CodeCache"/>); past it the cache
    /// is emptied and refills with what runs. Without a bound a guest could jump to every 2-byte offset
    /// of its RAM and make its VMM hold far more memory than its RAM.
    /// </summary>
    public long CodeCacheBytes { get; init; } = Cpu.CodeCache.DefaultBudgetBytes;

    /// <summary>True when <paramref name="percent"/> is a CPU cap a machine accepts: null or 1 to 100.</summary>
    public static bool IsValidCpuCap(int? percent) => percent is null or (>= 1 and <= 100);
}
