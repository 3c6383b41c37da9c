using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>Bytes and operations buckets of one device (or one direction of a NIC).</summary>
public sealed record RateLimiter
{
    [JsonPropertyName("bandwidth")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public TokenBucket? Bandwidth { get; init; }

    [JsonPropertyName("ops")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public TokenBucket? Ops { get; init; }
}
