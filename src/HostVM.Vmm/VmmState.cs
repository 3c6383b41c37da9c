namespace HostVM.Vmm;

/// <summary>Where the VM of a VMM process is in its life.</summary>
public enum VmmState
{
    NotStarted,
    Running,
    Paused,

    /// <summary>The machine ended (powered off, crashed or stopped); the process is about to exit.</summary>
    Exited,
}
