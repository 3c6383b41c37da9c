using HostVM.Host.Security;

namespace HostVM.Host.Api;

/// <summary>
/// One route of the REST API with what it asks of its caller. Every route is mapped with one of these
/// (HostApi refuses to start otherwise); access control, the audit log and the OpenAPI document read it.
/// </summary>
/// <param name="Action">A stable name, "vm.start": the audit log's action and the OpenAPI operationId.</param>
/// <param name="AuditAlways">Written to the audit log although it is a GET (attaching to a console, which may type into a guest).</param>
public sealed record ApiEndpoint(string Method, string Pattern, Access Access, string Action, string Summary, bool AuditAlways = false)
{
    /// <summary>Written to the audit log: every call that may change something.</summary>
    public bool Audited => AuditAlways || Method is not ("GET" or "HEAD");
}
