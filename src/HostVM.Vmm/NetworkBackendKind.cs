namespace HostVM.Vmm;

public enum NetworkBackendKind
{
    User,
    Switch,
    Tap,
}
