using System.Text.Json.Serialization;

namespace HostVM.Vmm.Api;

/// <summary>One drive's counters in <see cref="VmmStatistics"/>.</summary>
public sealed record DriveStatistics(
    [property: JsonPropertyName("drive_id")] string DriveId,
    [property: JsonPropertyName("reads")] long Reads,
    [property: JsonPropertyName("writes")] long Writes,
    [property: JsonPropertyName("bytes_read")] long BytesRead,
    [property: JsonPropertyName("bytes_written")] long BytesWritten,
    [property: JsonPropertyName("flushes")] long Flushes,
    [property: JsonPropertyName("errors")] long Errors,
    [property: JsonPropertyName("throttled")] long Throttled);
