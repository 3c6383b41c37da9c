using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>PUT /boot-source: the kernel, its initrd and command line (host paths).</summary>
public sealed record BootSource
{
    [JsonPropertyName("kernel_image_path")]
    public string? KernelImagePath { get; init; }

    [JsonPropertyName("initrd_path")]
    public string? InitrdPath { get; init; }

    /// <summary>
    /// HostVM's own: M-mode firmware (OpenSBI's fw_jump.bin, say) to run first, which then starts the kernel in S-mode.
    /// Without it HostVM's built-in SBI starts the kernel. A boot loader such as U-Boot wants the firmware.
    /// </summary>
    [JsonPropertyName("firmware_path")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? FirmwarePath { get; init; }

    [JsonPropertyName("boot_args")]
    public string? BootArgs { get; init; }
}
