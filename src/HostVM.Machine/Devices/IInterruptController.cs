namespace HostVM.Machine.Devices;

/// <summary>Where a device raises its interrupt: the PLIC's input side. Level-triggered; source 0 does not exist.</summary>
public interface IInterruptController
{
    void SetIrq(int source, bool level);
}
