using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>GET /balloon/statistics: the balloon's size and the guest's last memory statistics (bytes; absent if the guest has not sent them).</summary>
public sealed record BalloonStats
{
    [JsonPropertyName("target_pages")]
    public long TargetPages { get; init; }

    [JsonPropertyName("actual_pages")]
    public long ActualPages { get; init; }

    [JsonPropertyName("target_mib")]
    public long TargetMib { get; init; }

    [JsonPropertyName("actual_mib")]
    public long ActualMib { get; init; }

    [JsonPropertyName("swap_in")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? SwapIn { get; init; }

    [JsonPropertyName("swap_out")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? SwapOut { get; init; }

    [JsonPropertyName("major_faults")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? MajorFaults { get; init; }

    [JsonPropertyName("minor_faults")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? MinorFaults { get; init; }

    [JsonPropertyName("free_memory")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? FreeMemory { get; init; }

    [JsonPropertyName("total_memory")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? TotalMemory { get; init; }

    [JsonPropertyName("available_memory")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? AvailableMemory { get; init; }

    [JsonPropertyName("disk_caches")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? DiskCaches { get; init; }
}
