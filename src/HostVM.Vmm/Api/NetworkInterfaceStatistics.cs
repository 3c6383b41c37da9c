using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>One NIC's counters in <see cref="VmmStatistics"/> (rx: toward the guest; tx: from it).</summary>
public sealed record NetworkInterfaceStatistics(
    [property: JsonPropertyName("iface_id")] string IfaceId,
    [property: JsonPropertyName("rx_frames")] long RxFrames,
    [property: JsonPropertyName("rx_bytes")] long RxBytes,
    [property: JsonPropertyName("rx_dropped")] long RxDropped,
    [property: JsonPropertyName("tx_frames")] long TxFrames,
    [property: JsonPropertyName("tx_bytes")] long TxBytes,
    [property: JsonPropertyName("tx_dropped")] long TxDropped,
    [property: JsonPropertyName("rx_throttled")] long RxThrottled,
    [property: JsonPropertyName("tx_throttled")] long TxThrottled);
