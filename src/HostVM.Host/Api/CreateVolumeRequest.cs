namespace HostVM.Host.Api;

/// <summary>POST /v1/volumes.</summary>
public sealed record CreateVolumeRequest
{
    /// <summary>The pool (default: <c>default</c>).</summary>
    public string? Pool { get; init; }

    public string? Name { get; init; }

    /// <summary>The project it goes into (default: the token's, or "default").</summary>
    public string? Project { get; init; }

    /// <summary>The size its guest sees: a multiple of 512 (default with a backing volume: the backing's).</summary>
    public long? SizeBytes { get; init; }

    /// <summary><c>qcow2</c> (the default) or <c>raw</c>.</summary>
    public string? Format { get; init; }

    /// <summary>A volume of the same project (<c>POOL/NAME</c>) the new qcow2 volume is an overlay on.</summary>
    public string? Backing { get; init; }
}
