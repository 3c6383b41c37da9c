using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>PUT /serial: the serial console's output to a file or named pipe instead of stdout.</summary>
public sealed record SerialDevice
{
    [JsonPropertyName("serial_out_path")]
    public string? SerialOutPath { get; init; }

    [JsonPropertyName("rate_limiter")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public TokenBucket? RateLimiter { get; init; }
}
