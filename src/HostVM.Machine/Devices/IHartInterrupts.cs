namespace HostVM.Machine.Devices;

/// <summary>
/// What the interrupt controllers (CLINT, PLIC) see of a hart. Implemented by the hart; safe to call
/// from any thread. Raising a line wakes the hart if it sleeps in WFI.
/// </summary>
public interface IHartInterrupts
{
    int HartId { get; }

    /// <summary>Drives one hardware interrupt-pending bit of mip.</summary>
    void SetInterruptLine(InterruptLine line, bool level);

    /// <summary>
    /// This hart's mtimecmp. The hart raises MTIP by itself once <see cref="MachineClock.Now"/> reaches it;
    /// setting it wakes the hart so a WFI sleep recomputes its deadline.
    /// </summary>
    ulong TimerCompare { get; set; }
}
