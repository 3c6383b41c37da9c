using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>
/// GET|PUT|PATCH /machine-config. <c>smt</c> and <c>cpu_template</c> are x86 features (refused unless off);
/// <c>cpu_cap_percent</c> is HostVM's own: the share of one host core each vCPU may use (1-100, changeable after boot).
/// </summary>
public sealed record MachineConfig
{
    [JsonPropertyName("vcpu_count")]
    public int? VcpuCount { get; init; }

    [JsonPropertyName("mem_size_mib")]
    public long? MemSizeMib { get; init; }

    [JsonPropertyName("smt")]
    public bool? Smt { get; init; }

    [JsonPropertyName("track_dirty_pages")]
    public bool? TrackDirtyPages { get; init; }

    [JsonPropertyName("cpu_template")]
    public string? CpuTemplate { get; init; }

    [JsonPropertyName("huge_pages")]
    public string? HugePages { get; init; }

    /// <summary>HostVM's: the virtio-mmio version the board offers, <c>modern</c> (2, the default) or <c>legacy</c> (1, QEMU 7.2's default).</summary>
    [JsonPropertyName("virtio_transport")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? VirtioTransport { get; init; }

    [JsonPropertyName("cpu_cap_percent")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? CpuCapPercent { get; init; }
}
