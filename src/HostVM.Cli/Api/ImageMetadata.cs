namespace HostVM.Cli.Api;

/// <summary>The <c>metadata</c> part of an image upload (POST /v1/images as multipart/form-data).</summary>
public sealed record ImageMetadata
{
    public required string Name { get; init; }

    public string? BootArgs { get; init; }

    public string? Description { get; init; }
}
