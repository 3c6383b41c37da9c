namespace HostVM.Machine.Tests.Virtio;

/// <summary>A buffer in guest RAM that the test driver puts into a descriptor.</summary>
internal readonly record struct GuestBuffer(ulong Address, uint Length);
