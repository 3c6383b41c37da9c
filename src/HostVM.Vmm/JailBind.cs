namespace HostVM.Vmm;

/// <summary>
/// One bind mount of a jail (<see cref="JailPlan"/>): <see cref="Source"/> on the host appears at
/// <see cref="Target"/> under the jail's root (a mount point the daemon made), always nosuid.
/// </summary>
public sealed record JailBind
{
    public required string Source { get; init; }

    /// <summary>Where it appears, absolute as the jailed VMM sees it (e.g. <c>/usr</c>, <c>/vm/disk.img</c>).</summary>
    public required string Target { get; init; }

    public bool ReadOnly { get; init; }

    public bool NoExec { get; init; }

    /// <summary>Device files on it do not open (every bind but the few device nodes a jail gets).</summary>
    public bool NoDev { get; init; }
}
