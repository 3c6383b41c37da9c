namespace HostVM.Machine.Cpu;

public enum HartRunState
{
    /// <summary>Executing (or sleeping in WFI, which is still "running" to the guest).</summary>
    Started,
    /// <summary>Not started yet, or stopped through SBI HSM; waits for a start request.</summary>
    Stopped,
}
