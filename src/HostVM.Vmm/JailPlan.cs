namespace HostVM.Vmm;

/// <summary>
/// What a VMM started by the daemon does to seal itself (<see cref="JailEntry"/>) before it runs: the
/// daemon writes it (<c>--jail-plan FILE</c>, a root-owned file) and starts the VMM as root in new mount,
/// PID, network, IPC and UTS namespaces (util-linux's <c>unshare</c>). One process does the mounts with
/// mount(2) where a shell ran mount(8) once for each, a dozen processes per VM start.
/// </summary>
public sealed record JailPlan
{
    /// <summary>The jail's root on the host: a directory of mount points, the VM's binds go under it.</summary>
    public required string Root { get; init; }

    public required IReadOnlyList<JailBind> Binds { get; init; }

    /// <summary>
    /// The daemon's mount namespace (<see cref="JailEntry.MountNamespace"/>): the VMM refuses to go on in it, where its
    /// first steps would change the host's own mounts (a plan run by hand, outside <c>unshare --mount</c>).
    /// </summary>
    public required string HostMountNamespace { get; init; }

    /// <summary>The uid and gid the VMM runs as from then on (never 0).</summary>
    public required int Id { get; init; }

    /// <summary>Its only supplementary group (the switches' shared group).</summary>
    public required int Group { get; init; }

    /// <summary>Its nice value (a CPU weight other than the default), or null for the daemon's own.</summary>
    public int? Nice { get; init; }

    public required int OpenFiles { get; init; }

    /// <summary>Processes (threads count) its uid may have.</summary>
    public required int Processes { get; init; }

    /// <summary>The largest file it may write, bytes.</summary>
    public required long FileSize { get; init; }
}
