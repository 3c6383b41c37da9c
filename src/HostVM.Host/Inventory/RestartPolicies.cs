namespace HostVM.Host.Inventory;

/// <summary>What the supervisor does when a VM's VMM ends without being asked to.</summary>
public static class RestartPolicies
{
    public const string Never = "never";
    public const string OnFailure = "on-failure";
    public const string Always = "always";

    public static bool IsKnown(string policy) => policy is Never or OnFailure or Always;
}
