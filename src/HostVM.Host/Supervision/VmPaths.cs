namespace HostVM.Host.Supervision;

/// <summary>
/// Where one VM's files live: its disk, its own kernel and initrd (linked from its image when it was
/// created, so the VM boots the same files whatever later happens to the image's name) and logs in
/// the data directory, what its VMM writes in <see cref="Output"/>, its sockets in the runtime directory.
/// </summary>
public sealed record VmPaths(string Directory, string RuntimeDirectory)
{
    public static VmPaths For(HostSettings settings, string vmId)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return new(Path.Combine(settings.DataDir, "vms", vmId), Path.Combine(settings.RuntimeDir, "vms", vmId));
    }

    /// <summary>A raw disk: a whole copy of the image's (VMs made before overlays).</summary>
    public string Disk => Path.Combine(Directory, "disk.img");

    /// <summary>
    /// The qcow2 chain's directory: the overlay, its layers and its base, which name each other by relative paths. A jailed
    /// VMM sees the directory itself (read-write, but only the daemon may add, rename or remove names in it), so that a
    /// live block job's new files and renames reach the running VMM.
    /// </summary>
    public string Disks => Path.Combine(Directory, "disks");

    /// <summary>The VM's disk as a qcow2 overlay on <see cref="Base"/>, which it names by the relative path "base.img".</summary>
    public string Overlay => Path.Combine(Disks, "disk.qcow2");

    /// <summary>The image's disk, hard-linked (read-only for every VM that has it; the image may go, the VM keeps it).</summary>
    public string Base => Path.Combine(Disks, BaseFileName);

    public const string BaseFileName = "base.img";

    /// <summary>A layer of the VM's disk between its base and its overlay (a clone's source's disk when it was cloned; read-only).</summary>
    public string Layer(string name) => Path.Combine(Disks, name);

    /// <summary>A new overlay while a freeze or a commit puts it in place (see VmSupervisor.Freeze).</summary>
    public string NextOverlay => Path.Combine(Disks, "disk.next.qcow2");

    /// <summary>The file the VM's disk is: its overlay, or its raw copy.</summary>
    public string DiskOf(HostVM.Host.Inventory.VmRecord vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        return vm.DiskFormat == "qcow2" ? Overlay : Disk;
    }

    /// <summary>The cloud-init NoCloud seed (ISO 9660, CIDATA), the VM's own, read-only in its jail.</summary>
    public string Seed => Path.Combine(Directory, "seed.iso");

    /// <summary>The user-data on the seed, kept so a clone's seed carries it with its own instance id.</summary>
    public string SeedUserData => Path.Combine(Directory, "seed-user-data");

    public string Kernel => Path.Combine(Directory, "kernel");

    public string Initrd => Path.Combine(Directory, "initrd");

    /// <summary>M-mode firmware the VM runs first, when its image has one (a boot loader's OpenSBI).</summary>
    public string Firmware => Path.Combine(Directory, "firmware");

    /// <summary>What the VMM writes (its serial log and exit file): a jailed VMM's own directory, apart from the daemon's files.</summary>
    public string Output => Path.Combine(Directory, "out");

    public string SerialLog => Path.Combine(Output, "serial.log");

    public string VmmLog => Path.Combine(Directory, "vmm.log");

    public string VmmConfig => Path.Combine(Directory, "vmm.json");

    public string ExitFile => Path.Combine(Output, "exit.json");

    public string ApiSocket => Path.Combine(RuntimeDirectory, "api.sock");

    public string ConsoleSocket => Path.Combine(RuntimeDirectory, "console.sock");
}
