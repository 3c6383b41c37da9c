namespace HostVM.Vmm.Api;

/// <summary>
/// PUT /hostvm/drives/{id}/bitmaps: <c>add</c> (with <see cref="GranularityBytes"/>, a power of two from 512 B to 2 GiB,
/// default 64 KiB), <c>remove</c>, <c>clear</c>, <c>enable</c>, <c>disable</c>, or <c>merge</c> (sets in <see cref="Name"/>
/// every range set in <see cref="Source"/>).
/// </summary>
public sealed record BitmapRequest
{
    public string? Action { get; init; }

    public string? Name { get; init; }

    public long? GranularityBytes { get; init; }

    public string? Source { get; init; }
}
