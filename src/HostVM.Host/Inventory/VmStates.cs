namespace HostVM.Host.Inventory;

/// <summary>The states a VM is in, as the API spells them.</summary>
public static class VmStates
{
    public const string Stopped = "stopped";
    public const string Starting = "starting";
    public const string Running = "running";
    public const string Paused = "paused";
    public const string Stopping = "stopping";

    /// <summary>Died and will not be restarted (policy, or too many restarts).</summary>
    public const string Failed = "failed";

    /// <summary>States in which a VMM process exists and holds its resources.</summary>
    public static bool HasProcess(string state) => state is Starting or Running or Paused or Stopping;
}
