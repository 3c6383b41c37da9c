namespace HostVM.Cli.Api;

/// <summary>One NIC's counters in <see cref="VmStats"/> (rx: toward the guest; tx: from it).</summary>
public sealed record NicStats
{
    public string IfaceId { get; init; } = string.Empty;

    public long RxFrames { get; init; }

    public long RxBytes { get; init; }

    public long RxDropped { get; init; }

    public long TxFrames { get; init; }

    public long TxBytes { get; init; }

    public long TxDropped { get; init; }

    public long RxThrottled { get; init; }

    public long TxThrottled { get; init; }
}
