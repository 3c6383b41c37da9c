using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>GET|PUT /balloon; PATCH /balloon takes only <c>amount_mib</c>.</summary>
public sealed record Balloon
{
    [JsonPropertyName("amount_mib")]
    public long? AmountMib { get; init; }

    [JsonPropertyName("deflate_on_oom")]
    public bool? DeflateOnOom { get; init; }

    [JsonPropertyName("stats_polling_interval_s")]
    public int? StatsPollingIntervalS { get; init; }

    [JsonPropertyName("free_page_hinting")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? FreePageHinting { get; init; }

    [JsonPropertyName("free_page_reporting")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? FreePageReporting { get; init; }
}
