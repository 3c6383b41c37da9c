using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>PUT /metrics: where the JSON metrics lines go (a file or named pipe, appended to).</summary>
public sealed record Metrics
{
    [JsonPropertyName("metrics_path")]
    public string? MetricsPath { get; init; }
}
