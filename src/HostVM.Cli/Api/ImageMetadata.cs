namespace HostVM.Cli.Api;

/// <summary>The <c>metadata</c> part of an image upload (POST /v1/images as multipart/form-data).</summary>
public sealed record ImageMetadata
{
    public required string Name { get; init; }

    /// <summary>The project it goes into (null: the token's, else "default").</summary>
    public string? Project { get; init; }

    public string? BootArgs { get; init; }

    public string? Description { get; init; }
}
