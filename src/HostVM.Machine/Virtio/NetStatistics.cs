namespace HostVM.Machine.Virtio;

/// <summary>What a virtio-net device has carried, for the host's statistics.</summary>
public sealed class NetStatistics
{
    private long _rxFrames, _rxBytes, _rxDropped, _txFrames, _txBytes, _txDropped, _txSpoofed;

    public long ReceivedFrames => Interlocked.Read(ref _rxFrames);

    public long ReceivedBytes => Interlocked.Read(ref _rxBytes);

    /// <summary>Frames for the guest that found no room (queue full, buffer too small).</summary>
    public long ReceiveDropped => Interlocked.Read(ref _rxDropped);

    public long SentFrames => Interlocked.Read(ref _txFrames);

    public long SentBytes => Interlocked.Read(ref _txBytes);

    /// <summary>Frames from the guest that were malformed or too large.</summary>
    public long SendDropped => Interlocked.Read(ref _txDropped);

    /// <summary>Frames from the guest refused by the switch's filter (another MAC, ARP for another MAC, a DHCP server reply); also in <see cref="SendDropped"/>.</summary>
    public long SendSpoofed => Interlocked.Read(ref _txSpoofed);

    internal void CountReceived(long bytes)
    {
        Interlocked.Increment(ref _rxFrames);
        Interlocked.Add(ref _rxBytes, bytes);
    }

    internal void CountReceiveDropped() => Interlocked.Increment(ref _rxDropped);

    internal void CountSent(long bytes)
    {
        Interlocked.Increment(ref _txFrames);
        Interlocked.Add(ref _txBytes, bytes);
    }

    internal void CountSendDropped() => Interlocked.Increment(ref _txDropped);

    internal void CountSendSpoofed() => Interlocked.Increment(ref _txSpoofed);
}
