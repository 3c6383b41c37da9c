namespace HostVM.Host.Security;

/// <summary>What a token may do: a viewer reads; an operator also manages VMs, images and networks; an admin also manages tokens (and, unscoped, projects and the host).</summary>
public static class Roles
{
    public const string Viewer = "viewer";
    public const string Operator = "operator";
    public const string Admin = "admin";

    public static IReadOnlyList<string> All { get; } = [Viewer, Operator, Admin];

    public static bool IsKnown(string? role) => role is Viewer or Operator or Admin;

    /// <summary>0 viewer, 1 operator, 2 admin: a role may do what any lower one may.</summary>
    public static int Rank(string role) => role switch
    {
        Viewer => 0,
        Operator => 1,
        Admin => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "not a role"),
    };
}
