namespace HostVM.Host.Inventory;

/// <summary>
/// One mutating call: who (a token id, "local" for the owner's socket, "anonymous"), with what role, on which
/// project and object, from where, what (method, path and the endpoint's action name) and how it ended (HTTP status, problem detail).
/// </summary>
public sealed record AuditRecord(
    long Id, DateTimeOffset At, string Who, string? Role, string? Project, string Remote,
    string Method, string Path, string Action, string? Object, int Status, string? Detail);
