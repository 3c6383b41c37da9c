namespace HostVM.Machine.Devices;

/// <summary>The interrupt-pending bits of mip that hardware (CLINT, PLIC, built-in SBI) drives; the value is the bit number.</summary>
public enum InterruptLine
{
    SupervisorSoftware = 1,
    MachineSoftware = 3,
    SupervisorTimer = 5,
    MachineTimer = 7,
    SupervisorExternal = 9,
    MachineExternal = 11,
}
