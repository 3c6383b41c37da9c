using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using HostVM.Host.Inventory;
using HostVM.Vmm;
using HostVM.Vmm.Api;

namespace HostVM.Host.Supervision;

/// <summary>
/// Seals one VMM as Firecracker's jailer does. Three processes start it: a shell, util-linux's <c>unshare</c> (the new
/// namespaces: a multi-threaded runtime may not unshare its mount namespace itself) and the VMM, which seals itself
/// with a handful of system calls (<see cref="JailEntry"/>, following the plan made here) before it does anything else:
/// <list type="number">
/// <item>its own cgroup (<see cref="VmCgroup"/>: a CPU quota and a memory limit), joined by the shell before anything else;</item>
/// <item><c>unshare</c>: new mount, PID, network (no interfaces: frames go through the switch's Unix sockets), IPC and UTS namespaces;</item>
/// <item>in the new mount namespace, a root of its own (<see cref="Root"/>) holding read-only binds of /usr and the VMM's
/// program, /dev/null, /dev/zero, /dev/(u)random, its PID namespace's /proc, and only its VM's files: the disk (read-write),
/// kernel, initrd and configuration (read-only), an output directory (serial log, exit file), its socket directory and its
/// networks' switch directories; then <c>pivot_root</c> into it and the old root unmounted;</item>
/// <item>rlimits (open files, file size, processes, no core dumps), then its own uid and gid (<see cref="HostSettings.JailIdBase"/> + n),
/// the switches' shared group only, no capabilities, <c>no_new_privs</c>;</item>
/// <item>then its seccomp allowlist (<c>--seccomp</c>), before it reads its configuration.</item>
/// </list>
/// Inside, the VMM sees its files at fixed paths (<see cref="Inside"/>), whatever the host's layout.
/// </summary>
public sealed partial class VmmJail(HostSettings settings)
{
    /// <summary>The VM's paths as the jailed VMM sees them.</summary>
    public static readonly VmPaths Inside = new("/vm", "/vm/sock");

    private const int OpenFiles = 4096;
    private const int Processes = 1024; // threads count: vCPUs, device and I/O threads, the runtime's pool

    private static readonly string[] Tools = ["unshare"];
    private static readonly string[] Devices = ["null", "zero", "random", "urandom"];

    /// <summary>What a jail's root holds itself: the switches, seen at the host's runtime directory, cannot be there.</summary>
    private static readonly string[] Reserved = ["/vm", "/usr", "/dev", "/proc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];

    /// <summary>The group every jailed VMM has besides its own: it may use the switch directories it is given.</summary>
    public int SharedGroup => settings.JailIdBase;

    /// <summary>
    /// Whether VMMs run jailed under <paramref name="settings"/>: <c>off</c> never; <c>auto</c> when this daemon is
    /// root and util-linux's unshare is there; <c>on</c> the same, but otherwise refuse to start (and say why).
    /// </summary>
    public static bool Enabled(HostSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Jail == "off")
        {
            return false;
        }

        string? missing = !Environment.IsPrivilegedProcess ? "the daemon is not root (it needs root to make namespaces and switch uids)"
            : Reserved.FirstOrDefault(r => settings.RuntimeDir == r || settings.RuntimeDir.StartsWith(r + "/", StringComparison.Ordinal)) is { } taken
                ? $"the runtime directory {settings.RuntimeDir} is under {taken}, which a jail's root holds for itself"
            : Tools.FirstOrDefault(t => Which(t) is null) is { } tool ? $"'{tool}' is not installed (util-linux)"
            : null;
        if (missing is not null && settings.Jail == "on")
        {
            throw new HostSettingsException($"jail on: VMMs cannot be jailed: {missing}.");
        }

        return missing is null;
    }

    /// <summary>Where this daemon's VMs' cgroups are (<see cref="VmCgroup"/>): one scope per data directory.</summary>
    public string CgroupScope { get; } = "hostvm-" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(settings.DataDir)))[..12];

    /// <summary>The jail's root directory on the host.</summary>
    public string Root(string vmId) => Path.Combine(settings.RuntimeDir, "jail", vmId);

    /// <summary>The uid and gid of jail number <paramref name="n"/>.</summary>
    public int Id(int n) => settings.JailIdBase + n;

    /// <summary>The lowest jail number no VM in <paramref name="inUse"/> holds (1 to JailIdCount - 1).</summary>
    public int Allocate(IEnumerable<int?> inUse)
    {
        var taken = inUse.OfType<int>().ToHashSet();
        for (int n = 1; n < settings.JailIdCount; n++)
        {
            if (!taken.Contains(Id(n)))
            {
                return Id(n);
            }
        }

        throw new Api.ApiProblem(503, "no-jail-ids", "No jail uid is free", $"All {settings.JailIdCount - 1} jail uids from {settings.JailIdBase + 1} are in use: raise jail_id_count.");
    }

    /// <summary>
    /// Makes the jail of <paramref name="vm"/> (its root of empty mount points, its output and socket directories owned by
    /// <paramref name="id"/>, and the plan the VMM follows to seal itself, <see cref="JailPlan"/>) and returns the command
    /// that runs <paramref name="program"/> with <paramref name="arguments"/> in it. The caller's shell joins
    /// <paramref name="cgroup"/> first (<see cref="CgroupJoin"/>), so the VMM is in it from its first instruction.
    /// </summary>
    public IReadOnlyList<string> Prepare(VmRecord vm, VmPaths paths, int id, IReadOnlyList<string> program, IReadOnlyList<string> arguments, long fileSizeLimit, int? nice,
        IReadOnlyList<Storage.VolumeFile>? volumes = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(program);
        ArgumentNullException.ThrowIfNull(arguments);
        string root = Root(vm.Id);
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true); // mount points only: the mounts were in the last jail's namespace
        }

        Directory.CreateDirectory(root);
        OwnBy(root, 0, 0, 0x1ed); // 0755: the VMM's uid must pass through its own root
        var binds = new List<JailBind>();
        void Bind(string source, string target, bool directory, bool readOnly, bool noExec = true, bool noDev = true)
        {
            if (directory)
            {
                MountPointDirectory(root, target);
            }
            else
            {
                MountPointDirectory(root, Path.GetDirectoryName(target)!);
                File.WriteAllBytes(root + target, []);
            }

            binds.Add(new JailBind { Source = source, Target = target, ReadOnly = readOnly, NoExec = noExec, NoDev = noDev });
        }

        // The system's programs and libraries, read-only; merged-/usr links as the host has them.
        var readOnly = new List<string> { "/usr" };
        foreach (string top in new[] { "bin", "sbin", "lib", "lib32", "lib64", "libx32" })
        {
            var info = new FileInfo("/" + top);
            if (info.LinkTarget is { } target)
            {
                File.CreateSymbolicLink(Path.Combine(root, top), target);
            }
            else if (Directory.Exists("/" + top))
            {
                readOnly.Add("/" + top);
            }
        }

        // The VMM's program (and the .NET runtime, for one that is not self-contained) where it is on the host.
        foreach (string part in program.Where(p => p.StartsWith('/')).Select(p => Path.GetDirectoryName(Path.GetFullPath(p))!)
            .Append(Path.GetFullPath(Path.Combine(System.Runtime.InteropServices.RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."))))
        {
            string real = Path.GetFullPath(new DirectoryInfo(part).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? part);
            if (!readOnly.Any(r => real == r || real.StartsWith(r + "/", StringComparison.Ordinal)))
            {
                readOnly.Add(real);
            }
        }

        foreach (string directory in readOnly)
        {
            Bind(directory, directory, directory: true, readOnly: true, noExec: false);
        }

        foreach (string device in Devices)
        {
            Bind("/dev/" + device, "/dev/" + device, directory: false, readOnly: true, noDev: false);
        }

        // The VM's own files. The host's VM directory stays the daemon's (it writes there as root, so the VMM must not be
        // able to plant links in it); what the VMM writes goes to out/ and its sockets to its runtime directory, both its own.
        Directory.CreateDirectory(paths.Output);
        OwnBy(paths.Output, id, id, 0x1c0); // 0700
        OwnBy(paths.RuntimeDirectory, id, id, 0x1c0);
        Bind(paths.Output, Inside.Output, directory: true, readOnly: false);
        Bind(paths.RuntimeDirectory, Inside.RuntimeDirectory, directory: true, readOnly: false);
        if (vm.DiskMib > 0 && vm.DiskFormat == "qcow2")
        {
            // The chain's directory, so that a live block job's renames and new files reach the running VMM: the VMM may
            // pass through it and write the files it owns (the overlay), not add, rename or remove a name (root's, 0750).
            // An overlay's base is the image's disk (a hard link, shared by every VM made from it) and its layers may be a
            // clone's too: root's, readable by the jails' group; the names come from the record, not from the directory.
            OwnBy(paths.Disks, 0, id, 0x1e8); // 0750
            OwnBy(paths.Overlay, id, id, 0x180); // 0600
            foreach (string file in vm.DiskStandalone ? vm.DiskLayers : [.. vm.DiskLayers, VmPaths.BaseFileName])
            {
                OwnBy(paths.Layer(file), 0, SharedGroup, 0x1a0); // 0640
            }

            Bind(paths.Disks, Inside.Disks, directory: true, readOnly: false);
        }
        else if (vm.DiskMib > 0)
        {
            OwnBy(paths.DiskOf(vm), id, id, 0x180); // 0600
            Bind(paths.DiskOf(vm), Inside.DiskOf(vm), directory: false, readOnly: false);
        }

        // Volumes where the host has them (their qcow2 headers name their bases by those paths): the volume its own,
        // read-write; its bases root's, readable by the jails' group, read-only (a base may be another VM's base too).
        foreach (var volume in volumes ?? [])
        {
            if (volume.Socket is { } socket)
            {
                // An nbd pool's volume: the directory of the daemon's socket that serves it, the VM's alone (one VM per volume).
                string directory = Path.GetDirectoryName(socket)!;
                OwnBy(directory, id, id, 0x1c0); // 0700
                Bind(directory, directory, directory: true, readOnly: false);
                continue;
            }

            OwnBy(volume.Path, id, id, 0x180); // 0600
            Bind(volume.Path, volume.Path, directory: false, readOnly: false);
            foreach (string baseFile in volume.BackingChain)
            {
                OwnBy(baseFile, 0, SharedGroup, 0x1a0); // 0640
                Bind(baseFile, baseFile, directory: false, readOnly: true);
            }
        }

        // Boot files are the image's (hard links): root's, readable by the jails' group; each jail sees only its own.
        foreach (var (host, inside) in new[] { (paths.Kernel, Inside.Kernel), (paths.Initrd, Inside.Initrd), (paths.Firmware, Inside.Firmware) })
        {
            if (File.Exists(host))
            {
                OwnBy(host, 0, SharedGroup, 0x1a0); // 0640
                Bind(host, inside, directory: false, readOnly: true);
            }
        }

        OwnBy(paths.VmmConfig, 0, id, 0x1a0);
        Bind(paths.VmmConfig, Inside.VmmConfig, directory: false, readOnly: true);

        // The cloud-init seed: the VM's own, written by the daemon; the VMM reads it and the jail cannot change it.
        if (vm.CloudInit is not null)
        {
            OwnBy(paths.Seed, 0, id, 0x1a0);
            Bind(paths.Seed, Inside.Seed, directory: false, readOnly: true);
        }

        // A switch's ports name each other by their sockets' paths (a datagram's source address), so the jail sees its
        // switches where the host has them: the daemon's NAT and the other VMs' VMMs recognise its port, and it theirs.
        foreach (string network in vm.Networks.Select(n => n.Network).Distinct())
        {
            string switchDirectory = Path.Combine(settings.RuntimeDir, "switches", network);
            ShareSwitch(switchDirectory);
            Bind(switchDirectory, switchDirectory, directory: true, readOnly: false);
        }

        MountPointDirectory(root, "/proc");
        Directory.CreateDirectory(Path.Combine(root, ".old"));
        var plan = new JailPlan
        {
            Root = root,
            Binds = binds,
            HostMountNamespace = JailEntry.MountNamespace(),
            Id = id,
            Group = SharedGroup,
            Nice = nice,
            OpenFiles = OpenFiles,
            Processes = Processes,
            FileSize = fileSizeLimit,
        };
        string planFile = PlanFile(vm.Id);
        File.WriteAllBytes(planFile, JsonSerializer.SerializeToUtf8Bytes(plan, VmmJsonContext.Default.JailPlan));
        OwnBy(planFile, 0, 0, 0x180); // 0600: the VMM reads it while it is still root

        // The VMM, root in namespaces of its own, seals itself (JailEntry) before anything else, then installs its seccomp filter.
        var command = new List<string> { "unshare", "--mount", "--pid", "--net", "--ipc", "--uts", "--fork", "--kill-child", "--propagation", "unchanged" };
        command.AddRange(program);
        command.Add("--jail-plan");
        command.Add(planFile);
        command.AddRange(arguments);
        return command;
    }

    /// <summary>The shell commands that move the shell running them into <paramref name="cgroup"/> (then it execs the VMM).</summary>
    public static string CgroupJoin(VmCgroup? cgroup)
    {
        var join = new StringBuilder();
        foreach (string procs in cgroup?.ProcsFiles ?? [])
        {
            join.Append(CultureInfo.InvariantCulture, $"echo $$ > {Quote(procs)}; ");
        }

        return join.ToString();
    }

    private string PlanFile(string vmId) => Root(vmId) + ".plan";

    /// <summary>Removes the jail's root once its VMM has gone (its mounts went with its namespace).</summary>
    public void Remove(string vmId)
    {
        string root = Root(vmId);
        try
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }

            File.Delete(PlanFile(vmId));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left for the next start, which makes it anew.
        }
    }

    /// <summary>
    /// Lets the jails on a network use its switch: the directory is root's and the shared group's (setgid, so the sockets
    /// the VMMs bind there are the group's too, and SwitchPort makes them group-writable), and sockets bound before
    /// (the daemon's NAT uplink) join the group.
    /// </summary>
    private void ShareSwitch(string directory)
    {
        Directory.CreateDirectory(directory);
        OwnBy(directory, 0, SharedGroup, 0x5f8); // 02770
        foreach (string socket in Directory.EnumerateFiles(directory, "*.sock"))
        {
            if (new FileInfo(socket).LinkTarget is null)
            {
                OwnBy(socket, 0, SharedGroup, 0x1b0); // 0660
            }
        }

        string reserved = Path.Combine(directory, "reserved"); // the NAT's addresses, that every port refuses guests' claims to
        if (File.Exists(reserved) && new FileInfo(reserved).LinkTarget is null)
        {
            OwnBy(reserved, 0, SharedGroup, 0x1a0); // 0640
        }
    }

    /// <summary>Makes <paramref name="inside"/> and its parents in the jail's root, each 0755 root's (the daemon's umask would make them 0700).</summary>
    private static void MountPointDirectory(string root, string inside)
    {
        string at = root;
        foreach (string part in inside.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            at = Path.Combine(at, part);
            if (!Directory.Exists(at))
            {
                Directory.CreateDirectory(at);
                OwnBy(at, 0, 0, 0x1ed);
            }
        }
    }

    /// <summary>Gives a disk file to jail <paramref name="id"/> (0600): a live block job's new overlay, or the layer a commit writes into.</summary>
    public static void GiveDisk(string path, int id) => OwnBy(path, id, id, 0x180);

    private static void OwnBy(string path, int uid, int gid, int mode)
    {
        if (lchown(path, uid, gid) != 0 || chmod(path, mode) != 0)
        {
            throw new IOException($"cannot give {path} to uid {uid} gid {gid}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    private static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static string? Which(string tool) =>
        new[] { "/usr/bin", "/usr/sbin", "/bin", "/sbin" }.Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int lchown(string path, int owner, int group);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int chmod(string path, int mode);
}
