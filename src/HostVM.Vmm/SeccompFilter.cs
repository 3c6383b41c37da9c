using System.Runtime.InteropServices;

namespace HostVM.Vmm;

/// <summary>
/// The system calls a jailed VMM may make, as a seccomp filter built with libseccomp (Debian's libseccomp2),
/// installed on every thread at once (TSYNC): any other call kills the whole process (SECCOMP_RET_KILL_PROCESS,
/// the daemon sees SIGSYS). The list is what the .NET runtime and the VMM were seen to call (strace of a boot
/// with disk, network, console, balloon, API, pause, rate limits and power-off) plus the calls the same code
/// makes on paths that run rarely (flush, discard, sleep, signals to its own threads). Left out on purpose:
/// exec, fork (a clone without CLONE_THREAD), namespaces, mount, ptrace, process_vm_*, bpf, perf, keyrings,
/// userfaultfd, io_uring, module and clock changes, uid changes, and sockets of any family but Unix.
/// </summary>
public static partial class SeccompFilter
{
    private const uint ActionKillProcess = 0x80000000;
    private const uint ActionAllow = 0x7fff0000;
    private const uint AttributeThreadSync = 4; // SCMP_FLTATR_CTL_TSYNC
    private const int CompareLess = 2; // SCMP_CMP_LT
    private const int CompareEqual = 4; // SCMP_CMP_EQ
    private const int CompareGreater = 6; // SCMP_CMP_GT
    private const int CompareMaskedEqual = 7; // SCMP_CMP_MASKED_EQ
    private const ulong CloneThread = 0x10000; // CLONE_THREAD
    private const ulong AddressFamilyUnix = 1;
    private const int NoSuchCall = 38; // ENOSYS
    private const int AccessDenied = 13; // EACCES

    /// <summary>Allowed whatever their arguments.</summary>
    internal static readonly string[] Allowed =
    [
        // memory
        "brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "mincore", "msync", "membarrier", "memfd_create",
        "get_mempolicy", "set_mempolicy", "mbind", "mlock", "munlock",
        // threads, scheduling, time, signals to itself
        "futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address", "exit", "exit_group", "gettid",
        "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getscheduler", "sched_setscheduler", "sched_getparam",
        "sched_setparam", "sched_get_priority_min", "sched_get_priority_max", "getcpu", "nanosleep", "clock_nanosleep",
        "clock_gettime", "clock_getres", "gettimeofday", "time", "times", "getrusage", "sysinfo", "uname",
        "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait", "rt_sigsuspend", "sigaltstack", "restart_syscall",
        "tgkill", "tkill", "kill", "getpid", "getppid", "getpgrp", "getsid", "setsid", "getuid", "geteuid", "getgid", "getegid",
        "getgroups", "getresuid", "getresgid", "prctl", "arch_prctl", "prlimit64", "getrlimit", "capget", "getpriority", "setpriority",
        "umask", "getcwd", "chdir",
        // files: the jail's mount namespace decides which exist
        "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2", "pwritev2", "lseek",
        "open", "openat", "openat2", "close", "close_range", "creat", "dup", "dup2", "dup3", "fcntl", "flock", "ioctl",
        "stat", "fstat", "lstat", "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2",
        "readlink", "readlinkat", "getdents64", "fsync", "fdatasync", "sync_file_range", "fallocate", "ftruncate", "truncate",
        "fadvise64", "copy_file_range", "sendfile", "splice", "unlink", "unlinkat", "rename", "renameat", "renameat2",
        "mkdir", "mkdirat", "rmdir", "chmod", "fchmod", "fchmodat", "mknod", "mknodat", "utimensat", "futimesat",
        "pipe", "pipe2", "eventfd", "eventfd2", "timerfd_create", "timerfd_settime", "timerfd_gettime",
        "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
        "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
        "getrandom",
        // Unix sockets (socket itself is checked below)
        "socketpair", "bind", "listen", "accept", "accept4", "connect", "shutdown", "getsockname", "getpeername",
        "getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    ];

    private static volatile bool installed;

    /// <summary>Whether this process runs under the filter.</summary>
    public static bool Installed => installed;

    /// <summary>Installs the filter on every thread of this process; it cannot be lifted.</summary>
    /// <exception cref="VmmFault">libseccomp is missing or the kernel refused the filter.</exception>
    public static void Install()
    {
        nint context;
        try
        {
            context = Init(ActionKillProcess);
        }
        catch (DllNotFoundException e)
        {
            throw new VmmFault($"--seccomp: libseccomp is not installed (Debian: libseccomp2): {e.Message}");
        }

        if (context == 0)
        {
            throw new VmmFault("--seccomp: seccomp_init failed.");
        }

        try
        {
            Check(AttributeSet(context, AttributeThreadSync, 1), "synchronise threads");
            foreach (string name in Allowed)
            {
                int number = ResolveName(name);
                if (number >= 0)
                {
                    Check(RuleAdd(context, ActionAllow, number, 0, []), name);
                }
            }

            // Threads only: a clone without CLONE_THREAD is a new process (fork, or a new namespace's first).
            // clone3 hides its flags in memory a filter cannot read, so it answers ENOSYS and glibc falls back to clone.
            Check(RuleAdd(context, ActionAllow, ResolveName("clone"), 1, [new ArgumentCompare(0, CompareMaskedEqual, CloneThread, CloneThread)]), "clone");
            Check(RuleAdd(context, Errno(NoSuchCall), ResolveName("clone3"), 0, []), "clone3");

            // Unix sockets only; any other family fails (EACCES) rather than killing, as runtimes probe for IPv6.
            int socket = ResolveName("socket");
            Check(RuleAdd(context, ActionAllow, socket, 1, [new ArgumentCompare(0, CompareEqual, AddressFamilyUnix, 0)]), "socket");
            Check(RuleAdd(context, Errno(AccessDenied), socket, 1, [new ArgumentCompare(0, CompareLess, AddressFamilyUnix, 0)]), "socket");
            Check(RuleAdd(context, Errno(AccessDenied), socket, 1, [new ArgumentCompare(0, CompareGreater, AddressFamilyUnix, 0)]), "socket");
            Check(Load(context), "load");
            installed = true;
        }
        finally
        {
            Release(context);
        }
    }

    /// <summary>
    /// Makes one system call the filter does not allow (personality(2), a query that is harmless where it is allowed), to
    /// show the filter holds: under it the process is killed here and never returns.
    /// </summary>
    /// <exception cref="VmmFault">This VMM runs without the filter.</exception>
    public static void ProbeForbiddenCall()
    {
        if (!installed)
        {
            throw new VmmFault("SeccompSelfTest: this VMM runs without a seccomp filter (only a jailed VMM, started with --seccomp, has one).");
        }

        _ = Personality(0xffffffff);
        throw new VmmFault("SeccompSelfTest: personality(2) was allowed: the filter does not hold.");
    }

    private static uint Errno(int errno) => 0x00050000 | (uint)(errno & 0xffff);

    private static void Check(int result, string what)
    {
        if (result < 0)
        {
            throw new VmmFault($"--seccomp: libseccomp refused '{what}' ({Marshal.GetPInvokeErrorMessage(-result)}).");
        }
    }

    /// <summary>struct scmp_arg_cmp: which argument, how it compares, and with what.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct ArgumentCompare(uint Argument, int Operator, ulong DatumA, ulong DatumB);

    [LibraryImport("libseccomp.so.2", EntryPoint = "seccomp_init")]
    private static partial nint Init(uint defaultAction);

    [LibraryImport("libseccomp.so.2", EntryPoint = "seccomp_attr_set")]
    private static partial int AttributeSet(nint context, uint attribute, uint value);

    [LibraryImport("libseccomp.so.2", EntryPoint = "seccomp_syscall_resolve_name", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ResolveName(string name);

    [LibraryImport("libseccomp.so.2", EntryPoint = "seccomp_rule_add_array")]
    private static partial int RuleAdd(nint context, uint action, int syscall, uint count, [In] ArgumentCompare[] arguments);

    [LibraryImport("libseccomp.so.2", EntryPoint = "seccomp_load")]
    private static partial int Load(nint context);

    [LibraryImport("libseccomp.so.2", EntryPoint = "seccomp_release")]
    private static partial void Release(nint context);

    [LibraryImport("libc", EntryPoint = "personality")]
    private static partial int Personality(uint persona);
}
