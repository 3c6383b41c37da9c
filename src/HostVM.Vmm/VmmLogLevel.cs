namespace HostVM.Vmm;

/// <summary>The logger's levels, as Firecracker names them (Off logs nothing).</summary>
public enum VmmLogLevel
{
    Off,
    Error,
    Warning,
    Info,
    Debug,
    Trace,
}
