using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>
/// PUT /network-interfaces/{iface_id} (pre-boot), and PATCH with only rate limiters (post-boot).
/// <c>host_dev_name</c> names the backend: a TAP interface (<c>tap0</c>), a HostVM switch (<c>switch:NAME</c>)
/// or user-mode networking (<c>user</c>, <c>user:hostfwd=tcp::8080-:80,hostfwd=...</c>).
/// </summary>
public sealed record NetworkInterface
{
    [JsonPropertyName("iface_id")]
    public string? IfaceId { get; init; }

    [JsonPropertyName("host_dev_name")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? HostDevName { get; init; }

    [JsonPropertyName("guest_mac")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? GuestMac { get; init; }

    [JsonPropertyName("mtu")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Mtu { get; init; }

    [JsonPropertyName("rx_rate_limiter")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RateLimiter? RxRateLimiter { get; init; }

    [JsonPropertyName("tx_rate_limiter")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RateLimiter? TxRateLimiter { get; init; }
}
