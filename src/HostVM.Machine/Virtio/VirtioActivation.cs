namespace HostVM.Machine.Virtio;

/// <summary>
/// What a device gets when the driver sets DRIVER_OK: its queues (null where the driver set none up),
/// the negotiated features, and whether the legacy (version 1) transport is in use.
/// </summary>
public sealed record VirtioActivation(IReadOnlyList<Virtqueue?> Queues, ulong Features, bool Legacy)
{
    public bool Has(ulong feature) => (Features & feature) == feature;
}
