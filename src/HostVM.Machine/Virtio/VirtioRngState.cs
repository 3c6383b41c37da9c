namespace HostVM.Machine.Virtio;

/// <summary>virtio-rng holds nothing between requests: its state is its queue's, which the transport keeps.</summary>
public sealed record VirtioRngState : VirtioDeviceState;
