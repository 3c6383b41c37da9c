using System.Text.Json.Serialization;

namespace HostVM.Machine.Virtio;

/// <summary>
/// What a snapshot keeps of a virtio device besides its transport, its queues and its backend: one
/// derived record per device type. The type names make a saved state say which device it is for.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "device")]
[JsonDerivedType(typeof(VirtioBlockState), "block")]
[JsonDerivedType(typeof(VirtioNetState), "net")]
[JsonDerivedType(typeof(VirtioConsoleState), "console")]
[JsonDerivedType(typeof(VirtioBalloonState), "balloon")]
[JsonDerivedType(typeof(VirtioInputState), "input")]
[JsonDerivedType(typeof(VirtioRngState), "rng")]
public abstract record VirtioDeviceState;
