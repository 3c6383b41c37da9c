namespace HostVM.Machine.Virtio;

/// <summary>One buffer of a descriptor chain: guest physical address (checked to lie in RAM), length, direction.</summary>
public readonly record struct DescriptorSegment(ulong Address, uint Length, bool Writable);
