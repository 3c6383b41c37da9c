namespace HostVM.Host.Inventory;

/// <summary>
/// One mutating call: who (a token id, "local" for the owner's socket, "anonymous"), with what role, on which
/// project and object, from where, what (method, path and the endpoint's action name) and how it ended (HTTP status, problem detail).
/// Count is 1, except in an entry that stands for many refused calls without a valid token (method and path "*"):
/// past a few a minute from one address, those are counted rather than written one by one (see <c>AuditLog</c>).
/// </summary>
public sealed record AuditRecord(
    long Id, DateTimeOffset At, string Who, string? Role, string? Project, string Remote,
    string Method, string Path, string Action, string? Object, int Status, string? Detail, int Count = 1);
