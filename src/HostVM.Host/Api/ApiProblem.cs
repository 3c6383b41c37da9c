namespace HostVM.Host.Api;

/// <summary>A refused request: answered as problem+json with this status, title and detail (and field errors); nothing was changed.</summary>
public sealed class ApiProblem(int status, string type, string title, string detail, IReadOnlyDictionary<string, string[]>? errors = null)
    : Exception(detail)
{
    public int Status { get; } = status;

    /// <summary>The problem's slug (the problem type URI ends with it).</summary>
    public string Type { get; } = type;

    public string Title { get; } = title;

    public IReadOnlyDictionary<string, string[]>? Errors { get; } = errors;

    public static ApiProblem BadRequest(string detail, string? field = null) =>
        new(400, "bad-request", "The request is not valid", detail, field is null ? null : new Dictionary<string, string[]> { [field] = [detail] });

    public static ApiProblem NotFound(string what, string name) => new(404, "not-found", $"No such {what}", $"There is no {what} '{name}'.");

    public static ApiProblem Conflict(string detail) => new(409, "conflict", "The request conflicts with the current state", detail);

    /// <summary>Adding something would pass a project's quota; <paramref name="errors"/> names each quota (max_vms, ...) with why.</summary>
    public static ApiProblem QuotaExceeded(string detail, IReadOnlyDictionary<string, string[]> errors) =>
        new(409, "quota-exceeded", "The project's quota would be exceeded", detail, errors);

    /// <summary>A console or event stream past the caller's (or the VM's) cap of open sessions.</summary>
    public static ApiProblem TooManySessions(string detail) => new(429, "too-many-sessions", "Too many open sessions", detail);
}
