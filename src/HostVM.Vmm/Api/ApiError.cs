using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>The body of every 400 and 500 answer.</summary>
public sealed record ApiError([property: JsonPropertyName("fault_message")] string FaultMessage);
