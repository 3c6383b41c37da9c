using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>PUT /entropy: a virtio-rng device fed by the host's CSPRNG.</summary>
public sealed record EntropyDevice
{
    [JsonPropertyName("rate_limiter")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RateLimiter? RateLimiter { get; init; }
}
