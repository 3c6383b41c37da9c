using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>PATCH /vm: "Paused" or "Resumed".</summary>
public sealed record VmState
{
    [JsonPropertyName("state")]
    public string? State { get; init; }
}
