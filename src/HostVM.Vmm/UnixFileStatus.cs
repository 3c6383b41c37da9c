namespace HostVM.Vmm;

/// <summary>
/// What lstat says about a path: its owner, its permission bits and whether it is a directory, a symbolic
/// link or a socket (the link itself, never what it points to: a check of ownership must not be fooled by a link).
/// </summary>
public readonly record struct UnixFileStatus(uint Owner, UnixFileMode Mode, UnixFileKind Kind);
