namespace HostVM.Machine.Cpu;

public enum PrivilegeMode : byte
{
    User = 0,
    Supervisor = 1,
    Machine = 3,
}
