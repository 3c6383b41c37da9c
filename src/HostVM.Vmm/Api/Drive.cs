using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>PUT /drives/{drive_id} (pre-boot), and PATCH with only <c>drive_id</c> and <c>rate_limiter</c> (post-boot).</summary>
public sealed record Drive
{
    [JsonPropertyName("drive_id")]
    public string? DriveId { get; init; }

    [JsonPropertyName("path_on_host")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? PathOnHost { get; init; }

    [JsonPropertyName("is_root_device")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? IsRootDevice { get; init; }

    [JsonPropertyName("partuuid")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? PartUuid { get; init; }

    [JsonPropertyName("is_read_only")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? IsReadOnly { get; init; }

    [JsonPropertyName("cache_type")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? CacheType { get; init; }

    [JsonPropertyName("io_engine")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? IoEngine { get; init; }

    [JsonPropertyName("rate_limiter")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RateLimiter? RateLimiter { get; init; }

    /// <summary>
    /// HostVM's own: <c>raw</c> or <c>qcow2</c>. Without it the file's first bytes decide, so a raw disk a guest has
    /// written could be taken for qcow2: whoever attaches a disk a guest has had should say <c>raw</c>.
    /// </summary>
    [JsonPropertyName("format")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Format { get; init; }

    [JsonPropertyName("socket")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Socket { get; init; }
}
