using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>PUT /logger: where the VMM's own log lines go, and from which level.</summary>
public sealed record Logger
{
    [JsonPropertyName("log_path")]
    public string? LogPath { get; init; }

    [JsonPropertyName("level")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Level { get; init; }

    [JsonPropertyName("show_level")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? ShowLevel { get; init; }

    [JsonPropertyName("show_log_origin")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? ShowLogOrigin { get; init; }

    [JsonPropertyName("module")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Module { get; init; }
}
