namespace HostVM.Host.Api;

/// <summary>POST /v1/volumes/{pool}/{name}/serve (the host's admin): serve a volume over NBD.</summary>
public sealed record ServeVolumeRequest
{
    /// <summary>HOST:PORT to listen on (port 0: any free one).</summary>
    public string? Listen { get; init; }

    /// <summary>Let NBD clients write (default: read-only).</summary>
    public bool? Writable { get; init; }
}
