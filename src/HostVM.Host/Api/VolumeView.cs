namespace HostVM.Host.Api;

/// <summary>
/// A volume as the API shows it: with the bytes its file allocates, the VM it is attached to, and the overlays that use it
/// as their base (while it has any it cannot be attached, resized or deleted), and where it is served over NBD, if it is.
/// </summary>
public sealed record VolumeView(
    string Pool, string Name, string Project, string Format, long SizeBytes, long AllocatedBytes, string? Backing, string? AttachedTo,
    IReadOnlyList<string> Overlays, DateTimeOffset CreatedAt, VolumeServing? Nbd);
