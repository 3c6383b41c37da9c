using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>GET /hostvm/stats (HostVM's own endpoint): what the VM has used and done so far.</summary>
public sealed record VmmStatistics
{
    [JsonPropertyName("state")]
    public required string State { get; init; }

    [JsonPropertyName("uptime_ms")]
    public long UptimeMs { get; init; }

    [JsonPropertyName("vcpu_count")]
    public int VcpuCount { get; init; }

    [JsonPropertyName("instructions_retired")]
    public ulong InstructionsRetired { get; init; }

    /// <summary>CPU time the whole VMM process used (harts, devices, API), in ms.</summary>
    [JsonPropertyName("cpu_time_ms")]
    public long CpuTimeMs { get; init; }

    /// <summary>CPU time the hart threads used, in ms.</summary>
    [JsonPropertyName("vcpu_time_ms")]
    public long VcpuTimeMs { get; init; }

    /// <summary>Time the harts together slept because of the CPU cap, in ms.</summary>
    [JsonPropertyName("cpu_throttled_ms")]
    public long CpuThrottledMs { get; init; }

    [JsonPropertyName("cpu_cap_percent")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? CpuCapPercent { get; init; }

    [JsonPropertyName("guest_memory_bytes")]
    public long GuestMemoryBytes { get; init; }

    /// <summary>The VMM process's resident set, guest RAM it touched included.</summary>
    [JsonPropertyName("host_rss_bytes")]
    public long HostRssBytes { get; init; }

    [JsonPropertyName("drives")]
    public IReadOnlyList<DriveStatistics> Drives { get; init; } = [];

    [JsonPropertyName("network_interfaces")]
    public IReadOnlyList<NetworkInterfaceStatistics> NetworkInterfaces { get; init; } = [];
}
