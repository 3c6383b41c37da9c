namespace HostVM.Cli.Api;

/// <summary>One mutating call in GET /v1/audit: who (a token id, "local" for the owner's socket), from where, what, on which object, and how it ended.</summary>
public sealed record AuditEntry
{
    public long Id { get; init; }

    public DateTimeOffset At { get; init; }

    public string Who { get; init; } = string.Empty;

    public string? Role { get; init; }

    public string? Project { get; init; }

    /// <summary>The caller's IP address, or "unix" for the local socket.</summary>
    public string Remote { get; init; } = string.Empty;

    public string Method { get; init; } = string.Empty;

    public string Path { get; init; } = string.Empty;

    /// <summary>The endpoint's action name, e.g. vm.create.</summary>
    public string Action { get; init; } = string.Empty;

    /// <summary>What it acted on, e.g. vm/web.</summary>
    public string? Object { get; init; }

    /// <summary>The HTTP status of the answer.</summary>
    public int Status { get; init; }

    /// <summary>Why it was refused (the problem's detail), if it was.</summary>
    public string? Detail { get; init; }

    /// <summary>How many calls the entry stands for: 1, or the refusals without a valid token the daemon counted (method "*").</summary>
    public int Count { get; init; } = 1;
}
