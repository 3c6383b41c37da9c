using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>GET /: what this VMM is and the state of its VM ("Not started", "Running", "Paused").</summary>
public sealed record InstanceInfo(
    [property: JsonPropertyName("app_name")] string AppName,
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("vmm_version")] string VmmVersion);
