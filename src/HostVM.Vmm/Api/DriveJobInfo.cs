using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>
/// A drive's block job (GET /hostvm/drives/{id}/job): its type (reopen, commit, stream), its state (running; ready, a
/// commit waiting for complete; completed; cancelled; failed), how far it got, and why it failed.
/// </summary>
public sealed record DriveJobInfo(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("done_bytes")] long DoneBytes,
    [property: JsonPropertyName("total_bytes")] long TotalBytes,
    [property: JsonPropertyName("error")] string? Error);
