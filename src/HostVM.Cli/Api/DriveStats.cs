namespace HostVM.Cli.Api;

/// <summary>One drive's counters in <see cref="VmStats"/>.</summary>
public sealed record DriveStats
{
    public string DriveId { get; init; } = string.Empty;

    public long Reads { get; init; }

    public long Writes { get; init; }

    public long BytesRead { get; init; }

    public long BytesWritten { get; init; }

    public long Flushes { get; init; }

    public long Errors { get; init; }

    public long Throttled { get; init; }
}
