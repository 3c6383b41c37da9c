using System.Runtime.InteropServices;
using System.Text.Json;
using HostVM.Vmm.Api;

namespace HostVM.Vmm;

/// <summary>
/// Seals this process as its <see cref="JailPlan"/> says, first thing, while it is still root in the
/// namespaces <c>unshare</c> made for it: binds only its VM's files into its root, mounts its PID
/// namespace's /proc, pivots into the root (or, where the daemon itself runs chrooted and its "/" is no
/// mount point, chroots), sets its rlimits and nice value, and becomes its own uid and gid with no
/// capabilities and no_new_privs. Every call that changes the process's identity is one glibc makes on
/// all of its threads (the runtime has started a few by now); the seccomp filter the VMM installs next
/// (<c>--seccomp</c>) is synchronised over all of them and refuses execve, so nothing regains privilege.
/// </summary>
public static partial class JailEntry
{
    private const ulong ReadOnly = 1, NoSuid = 2, NoDev = 4, NoExec = 8, Remount = 32, Bind = 4096, Recursive = 16384, Private = 1 << 18;
    private const int Detach = 2;
    private const int LimitFileSize = 1, LimitCore = 4, LimitProcesses = 6, LimitOpenFiles = 7;
    private const int SetNoNewPrivileges = 38, DropBoundingCapability = 24;
    private const string OldRoot = ".old";

    /// <summary>Reads the plan at <paramref name="path"/> and enters the jail.</summary>
    /// <exception cref="VmmFault">The plan is unreadable or wrong, or a step failed (not root, a missing mount point, ...).</exception>
    public static void Enter(string path)
    {
        JailPlan? plan;
        try
        {
            plan = JsonSerializer.Deserialize(File.ReadAllBytes(path), VmmJsonContext.Default.JailPlan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
        {
            throw new VmmFault($"--jail-plan {path}: {e.Message}");
        }

        Enter(plan ?? throw new VmmFault($"--jail-plan {path}: empty."));
    }

    /// <inheritdoc cref="Enter(string)"/>
    public static void Enter(JailPlan plan)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.Id <= 0 || plan.Group <= 0)
        {
            throw new VmmFault($"jail: uid {plan.Id} / group {plan.Group}: a jail never runs as root.");
        }

        if (!Path.IsPathFullyQualified(plan.Root) || plan.Binds.Any(b => !b.Target.StartsWith('/') || b.Target.Split('/').Contains("..")))
        {
            throw new VmmFault("jail: the root and every bind's target must be absolute paths, without '..'.");
        }

        // Run by hand outside unshare, the steps below would change the host's own mounts ("/" made private).
        if (string.IsNullOrEmpty(plan.HostMountNamespace) || MountNamespace() == plan.HostMountNamespace)
        {
            throw new VmmFault("jail: --jail-plan needs a mount namespace of its own (the daemon starts the VMM under unshare --mount --pid).");
        }

        // Nothing mounted here propagates back to the host: all private from "/" down (which fails harmlessly where
        // "/" is no mount point, a chrooted daemon's), and the root itself a private mount its binds go under.
        _ = Mount(null, "/", null, Recursive | Private, null);
        Check(Mount(plan.Root, plan.Root, null, Bind, null), $"bind {plan.Root} on itself");
        Check(Mount(null, plan.Root, null, Recursive | Private, null), $"make {plan.Root} private");
        foreach (var bind in plan.Binds)
        {
            string target = plan.Root + bind.Target;
            ulong flags = NoSuid | (bind.ReadOnly ? ReadOnly : 0) | (bind.NoExec ? NoExec : 0) | (bind.NoDev ? NoDev : 0);
            Check(Mount(bind.Source, target, null, Bind, null), $"bind {bind.Source} at {bind.Target}");
            Check(Mount(null, target, null, Remount | Bind | flags, null), $"restrict {bind.Target}");
        }

        Check(Mount("proc", plan.Root + "/proc", "proc", ReadOnly | NoSuid | NoDev | NoExec, "hidepid=2"), "mount /proc");

        // pivot_root needs the current root to be a mount point; where it is not, chroot: the VMM has no capability to
        // leave a chroot, and the host's other mounts are in this namespace only, out of its sight.
        Check(Chdir(plan.Root), $"enter {plan.Root}");
        if (PivotRoot(".", OldRoot) == 0)
        {
            Check(Unmount("/" + OldRoot, Detach), "detach the old root");
            _ = Rmdir("/" + OldRoot);
        }
        else
        {
            _ = Rmdir(OldRoot);
            Check(Chroot("."), "chroot");
        }

        Check(Chdir("/"), "chdir /");

        Check(SetLimit(LimitOpenFiles, (ulong)plan.OpenFiles), "limit open files");
        Check(SetLimit(LimitProcesses, (ulong)plan.Processes), "limit processes");
        Check(SetLimit(LimitCore, 0), "forbid core dumps");
        Check(SetLimit(LimitFileSize, (ulong)plan.FileSize), "limit file size");
        if (plan.Nice is { } nice)
        {
            Check(SetPriority(0, 0, nice), "set the nice value");
        }

        // The bounding set, which only this thread's later execs would consult (and seccomp kills on execve), dropped as setpriv
        // dropped it: every capability the kernel knows (it answers EINVAL past the last).
        for (int capability = 0; Prctl(DropBoundingCapability, (ulong)capability, 0, 0, 0) == 0; capability++)
        {
        }

        // Groups, then gid, then uid: once the uid is not 0 the others can no longer change. With every uid non-zero
        // the kernel clears all capabilities (no SECBIT_KEEP_CAPS is set), in each thread glibc applies it to.
        Check(SetGroups(1, [plan.Group]), "set groups");
        Check(SetResGid(plan.Id, plan.Id, plan.Id), "set gid");
        Check(SetResUid(plan.Id, plan.Id, plan.Id), "set uid");
        Check(Prctl(SetNoNewPrivileges, 1, 0, 0, 0), "set no_new_privs");
        if (SetResUid(0, 0, 0) == 0)
        {
            throw new VmmFault("jail: the process could become root again after dropping its uid.");
        }
    }

    /// <summary>This process's mount namespace, as /proc names it (<c>mnt:[4026531841]</c>).</summary>
    /// <exception cref="VmmFault">/proc does not say.</exception>
    public static unsafe string MountNamespace()
    {
        // readlink(2) itself: these are the kernel's magic links, which FileInfo.LinkTarget does not report.
        byte* buffer = stackalloc byte[256];
        nint n = ReadLink("/proc/self/ns/mnt", buffer, 256);
        if (n <= 0)
        {
            throw new VmmFault($"jail: cannot tell this process's mount namespace: {Marshal.GetLastPInvokeErrorMessage()}.");
        }

        return System.Text.Encoding.UTF8.GetString(buffer, (int)n);
    }

    private static void Check(int result, string what)
    {
        if (result != 0)
        {
            throw new VmmFault($"jail: cannot {what}: {Marshal.GetLastPInvokeErrorMessage()}.");
        }
    }

    private static unsafe int SetLimit(int resource, ulong value)
    {
        ulong* limit = stackalloc ulong[2];
        limit[0] = value;
        limit[1] = value;
        return SetRlimit(resource, limit);
    }

    private static int PivotRoot(string newRoot, string putOld) =>
        (int)Syscall(RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 155,
            Architecture.Arm64 or Architecture.RiscV64 or Architecture.LoongArch64 => 41,
            _ => throw new VmmFault($"jail: pivot_root's number on {RuntimeInformation.ProcessArchitecture} is not known."),
        }, newRoot, putOld);

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Mount(string? source, string target, string? type, ulong flags, string? data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Unmount(string target, int flags);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long Syscall(long number, string first, string second);

    [LibraryImport("libc", EntryPoint = "readlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial nint ReadLink(string path, byte* buffer, nint size);

    [LibraryImport("libc", EntryPoint = "chdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Chdir(string path);

    [LibraryImport("libc", EntryPoint = "chroot", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Chroot(string path);

    [LibraryImport("libc", EntryPoint = "rmdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Rmdir(string path);

    [LibraryImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static unsafe partial int SetRlimit(int resource, ulong* limit);

    [LibraryImport("libc", EntryPoint = "setpriority", SetLastError = true)]
    private static partial int SetPriority(int which, int who, int priority);

    [LibraryImport("libc", EntryPoint = "setgroups", SetLastError = true)]
    private static partial int SetGroups(nuint count, int[] groups);

    [LibraryImport("libc", EntryPoint = "setresgid", SetLastError = true)]
    private static partial int SetResGid(int real, int effective, int saved);

    [LibraryImport("libc", EntryPoint = "setresuid", SetLastError = true)]
    private static partial int SetResUid(int real, int effective, int saved);

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);
}
