using System.Text.Json;

namespace HostVM.Integration.Tests;

/// <summary>One server-sent event of GET /v1/events/stream: its id, type and JSON data.</summary>
public sealed record SseEvent(long Id, string Type, JsonElement Data);
