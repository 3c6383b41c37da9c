using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>A token bucket: <c>size</c> tokens refilled every <c>refill_time</c> ms, plus a one-time burst. Size or refill time 0 means no limit.</summary>
public sealed record TokenBucket
{
    [JsonPropertyName("size")]
    public long? Size { get; init; }

    [JsonPropertyName("one_time_burst")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? OneTimeBurst { get; init; }

    [JsonPropertyName("refill_time")]
    public long? RefillTime { get; init; }
}
