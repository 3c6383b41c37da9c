using HostVM.Host.Security;

namespace HostVM.Host.Api;

/// <summary>
/// One route of the REST API with what it asks of its caller. Every route is mapped with one of these
/// (HostApi refuses to start otherwise); access control, the audit log and the OpenAPI document read it.
/// </summary>
/// <param name="Action">A stable name, "vm.start": the audit log's action and the OpenAPI operationId.</param>
public sealed record ApiEndpoint(string Method, string Pattern, Access Access, string Action, string Summary)
{
    /// <summary>Changes something: written to the audit log.</summary>
    public bool Mutates => Method is not ("GET" or "HEAD");
}
