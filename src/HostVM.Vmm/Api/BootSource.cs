using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>PUT /boot-source: the kernel, its initrd and command line (host paths).</summary>
public sealed record BootSource
{
    [JsonPropertyName("kernel_image_path")]
    public string? KernelImagePath { get; init; }

    [JsonPropertyName("initrd_path")]
    public string? InitrdPath { get; init; }

    [JsonPropertyName("boot_args")]
    public string? BootArgs { get; init; }
}
