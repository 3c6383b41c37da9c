namespace HostVM.Host.Security;

/// <summary>What an endpoint asks of its caller (docs/operations.md, "Security model").</summary>
public enum Access
{
    /// <summary>No token needed (the OpenAPI document; /metrics when metrics_public is set).</summary>
    Anyone,

    /// <summary>Any valid token: viewer, operator or admin.</summary>
    Read,

    /// <summary>Operator or admin: changes VMs, images and networks.</summary>
    Operate,

    /// <summary>Admin: tokens and the audit log (a project's admin sees its project's only).</summary>
    Admin,

    /// <summary>An admin token of no project (or the local socket): projects and host-wide settings.</summary>
    HostAdmin,
}
