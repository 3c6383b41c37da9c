namespace HostVM.Machine.Tests.Virtio;

/// <summary>One entry of a used ring: the head of the chain the device returned and the bytes it wrote.</summary>
internal readonly record struct UsedElement(ushort Head, uint Written);
