namespace HostVM.Vmm;

/// <summary>The type bits of a file's mode (S_IFMT), as far as ownership checks care.</summary>
public enum UnixFileKind
{
    Other,
    Regular,
    Directory,
    SymbolicLink,
    Socket,
}
