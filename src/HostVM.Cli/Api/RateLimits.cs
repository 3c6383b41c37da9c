using System.Text.Json.Serialization;

namespace HostVM.Cli.Api;

/// <summary>A disk's or NIC's limits as plain rates; null is unlimited (and is sent, so a PATCH can lift a limit).</summary>
public sealed record RateLimits
{
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public long? BandwidthBytesPerS { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public long? OpsPerS { get; init; }
}
