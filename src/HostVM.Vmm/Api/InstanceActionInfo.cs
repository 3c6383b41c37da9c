using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>PUT /actions: InstanceStart, FlushMetrics, or SendCtrlAltDel (on HostVM: press the guest's power button).</summary>
public sealed record InstanceActionInfo
{
    [JsonPropertyName("action_type")]
    public string? ActionType { get; init; }
}
