namespace HostVM.Machine.Virtio;

/// <summary>
/// What a snapshot keeps of virtio-balloon: the target the host set, the size the guest reported, whether
/// the host asked for statistics not yet sent, and the last statistics received. The statistics buffer
/// the device holds is in its queue, as not yet taken: a restored device takes (and reads) it again.
/// </summary>
public sealed record VirtioBalloonState(uint TargetPages, uint ActualPages, bool StatisticsWanted, BalloonStatistics? Statistics)
    : VirtioDeviceState;
