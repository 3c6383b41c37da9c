namespace HostVM.Machine.Virtio;

/// <summary>
/// The driver broke the virtqueue rules (an index out of range, a looping or overlong chain, a buffer
/// outside RAM). The transport marks the device DEVICE_NEEDS_RESET and stops serving it.
/// </summary>
public sealed class VirtqueueException(string message) : Exception(message);
