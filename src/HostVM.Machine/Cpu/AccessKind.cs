namespace HostVM.Machine.Cpu;

public enum AccessKind
{
    Fetch,
    Read,
    Write,
}
