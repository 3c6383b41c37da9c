namespace HostVM.Host.Security;

/// <summary>
/// Who is calling: a token (its id, role and project; a token without a project reaches every project), or
/// the owner on the local Unix socket (<see cref="Local"/>, an admin of everything). Remote is the peer address.
/// </summary>
public sealed record Caller(string Who, string Role, string? Project, string Remote)
{
    /// <summary>The Who of calls over the local socket.</summary>
    public const string LocalWho = "local";

    public static Caller Local { get; } = new(LocalWho, Roles.Admin, null, "unix");

    public static Caller Anonymous(string remote) => new("anonymous", string.Empty, null, remote);

    public bool IsAuthenticated => Who != "anonymous";

    /// <summary>Whether objects of <paramref name="project"/> exist for this caller (others answer 404).</summary>
    public bool Sees(string project) => Project is null || Project == project;

    public bool May(Access access) => access switch
    {
        Access.Anyone => true,
        Access.Read => IsAuthenticated,
        Access.Operate => IsAuthenticated && Roles.Rank(Role) >= Roles.Rank(Roles.Operator),
        Access.Admin => IsAuthenticated && Role == Roles.Admin,
        Access.HostAdmin => IsAuthenticated && Role == Roles.Admin && Project is null,
        _ => false,
    };
}
