namespace HostVM.Host.Api;

/// <summary>POST /v1/pools (the host's admin).</summary>
public sealed record CreatePoolRequest
{
    public string? Name { get; init; }

    /// <summary><c>dir</c> (the default) or <c>nbd</c>.</summary>
    public string? Driver { get; init; }

    /// <summary>A <c>dir</c> pool's directory: absolute, made if missing.</summary>
    public string? Path { get; init; }

    /// <summary>An <c>nbd</c> pool's server: HOST:PORT.</summary>
    public string? Address { get; init; }

    public string? Description { get; init; }
}
