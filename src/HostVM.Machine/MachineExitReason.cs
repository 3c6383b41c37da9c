namespace HostVM.Machine;

public enum MachineExitReason
{
    /// <summary>The guest powered off (sifive,test 0x5555, SBI shutdown) or a test program passed.</summary>
    PowerOff,
    /// <summary>The guest asked for a reboot.</summary>
    Reboot,
    /// <summary>The guest reported failure with an exit code (sifive,test 0x3333, HTIF non-zero).</summary>
    Fail,
    /// <summary>The guest did something nothing can handle (a trap with no firmware to take it).</summary>
    GuestError,
    /// <summary>The host stopped it (timeout, Ctrl-A X, an API call).</summary>
    Stopped,
}
