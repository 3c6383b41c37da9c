namespace HostVM.Machine.Devices;

/// <summary>What the guest asked the board's power device (sifive,test) to do.</summary>
public enum PowerAction
{
    PowerOff,
    Reboot,
    Fail,
}
