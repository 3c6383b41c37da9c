namespace HostVM.Host.Security;

/// <summary>The refused calls <see cref="AuditLog"/> counted for one address and status in the current minute, and the entry that shows them.</summary>
internal sealed class AuditTally(DateTimeOffset since)
{
    public DateTimeOffset Since { get; } = since;

    public int Calls { get; set; }

    /// <summary>The count the entry shows.</summary>
    public int Written { get; set; }

    /// <summary>The entry's id, once written.</summary>
    public long? Id { get; set; }
}
