using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>PATCH /balloon/statistics: a new polling interval (statistics cannot be turned on or off after boot).</summary>
public sealed record BalloonStatsUpdate
{
    [JsonPropertyName("stats_polling_interval_s")]
    public int? StatsPollingIntervalS { get; init; }
}
