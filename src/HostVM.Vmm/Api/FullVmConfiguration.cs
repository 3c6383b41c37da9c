using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>GET /vm/config, and the file <c>hostvm vmm --config-file</c> boots from.</summary>
public sealed record FullVmConfiguration
{
    [JsonPropertyName("boot-source")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public BootSource? BootSource { get; init; }

    [JsonPropertyName("machine-config")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public MachineConfig? MachineConfig { get; init; }

    [JsonPropertyName("drives")]
    public IReadOnlyList<Drive>? Drives { get; init; }

    [JsonPropertyName("network-interfaces")]
    public IReadOnlyList<NetworkInterface>? NetworkInterfaces { get; init; }

    [JsonPropertyName("balloon")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Balloon? Balloon { get; init; }

    /// <summary>
    /// HostVM's: a virtio-input power button (the API's SendCtrlAltDel presses it). Absent: one when a virtio slot is left
    /// (the VMM's way); false: none; true: one, or the machine is refused when no slot is left.
    /// </summary>
    [JsonPropertyName("power-button")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? PowerButton { get; init; }

    [JsonPropertyName("entropy")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public EntropyDevice? Entropy { get; init; }

    [JsonPropertyName("serial")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SerialDevice? Serial { get; init; }

    [JsonPropertyName("logger")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Logger? Logger { get; init; }

    [JsonPropertyName("metrics")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Metrics? Metrics { get; init; }
}
