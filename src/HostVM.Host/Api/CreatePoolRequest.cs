namespace HostVM.Host.Api;

/// <summary>POST /v1/pools (the host's admin).</summary>
public sealed record CreatePoolRequest
{
    public string? Name { get; init; }

    /// <summary><c>dir</c> (the default).</summary>
    public string? Driver { get; init; }

    /// <summary>A <c>dir</c> pool's directory: absolute, made if missing.</summary>
    public string? Path { get; init; }

    public string? Description { get; init; }
}
