namespace HostVM.Host.Api;

/// <summary>POST /v1/images as JSON (files already on the host, in an import directory) or the multipart form's metadata part.</summary>
public sealed record ImportImageRequest
{
    public string? Name { get; init; }

    /// <summary>The project it goes into (default: the token's, or "default").</summary>
    public string? Project { get; init; }

    /// <summary>Instead of files: a stopped VM whose boot files and disk (flattened to raw) become the image, in its project.</summary>
    public string? FromVm { get; init; }

    public string? Kernel { get; init; }

    public string? Initrd { get; init; }

    public string? Disk { get; init; }

    /// <summary>M-mode firmware VMs made from the image run first (OpenSBI's fw_jump.bin, for a kernel that is a boot loader).</summary>
    public string? Firmware { get; init; }

    public string? BootArgs { get; init; }

    public string? Description { get; init; }
}
