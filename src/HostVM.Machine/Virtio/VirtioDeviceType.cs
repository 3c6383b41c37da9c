namespace HostVM.Machine.Virtio;

/// <summary>Virtio device IDs (Virtio 1.2 §5) of the devices HostVM provides.</summary>
public enum VirtioDeviceType : uint
{
    None = 0,
    Network = 1,
    Block = 2,
    Console = 3,
    Entropy = 4,
    Balloon = 5,
    Input = 18,
}
