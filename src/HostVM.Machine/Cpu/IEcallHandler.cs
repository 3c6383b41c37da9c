namespace HostVM.Machine.Cpu;

/// <summary>
/// Firmware written in C# (the built-in SBI): gets the first look at ECALLs from S-mode.
/// Returning true means it handled the call (registers updated); the hart then steps past the ECALL.
/// </summary>
public interface IEcallHandler
{
    bool HandleEcall(Hart hart);
}
