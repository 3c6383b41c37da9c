using System.Globalization;

namespace HostVM.Host.Supervision;

/// <summary>
/// A VM's own cgroup, so the kernel enforces its CPU quota and memory limit whatever its VMM does:
/// cgroup v2 (<c>cpu.max</c>, <c>memory.max</c>) where the host has the unified hierarchy, else v1's
/// <c>cpu</c> and <c>memory</c> controllers (<c>cpu.cfs_quota_us</c>, <c>memory.limit_in_bytes</c>).
/// Each VM's group is <c>SCOPE-ID</c> at the top of each hierarchy, where the scope (<c>hostvm-KEY</c>, KEY from the daemon's
/// data directory) keeps two daemons on one host (as tests run them) from touching each other's groups. Top level, not
/// under one shared parent: CFS weighs sibling groups against each other, so under a common parent all VMs together would
/// weigh as much as one process of the host's; side by side, each VM weighs its <c>cpu_weight</c> (100: one process). Where none can be written (no root, a
/// read-only /sys), <see cref="Create"/> says so and the engine's own pacing is all there is.
/// </summary>
public sealed class VmCgroup
{
    public const long PeriodMicroseconds = 100_000;

    private const string Root = "/sys/fs/cgroup";

    private VmCgroup(IReadOnlyList<string> directories, bool unified)
    {
        Directories = directories;
        Unified = unified;
    }

    /// <summary>The VM's group in each hierarchy (one for v2, cpu and memory for v1).</summary>
    public IReadOnlyList<string> Directories { get; }

    public bool Unified { get; }

    /// <summary>The files a process writes its pid to, to join the group (in every hierarchy).</summary>
    public IEnumerable<string> ProcsFiles => Directories.Select(d => Path.Combine(d, "cgroup.procs"));

    /// <summary>
    /// The CPU a VM's VMM may use, in microseconds per <see cref="PeriodMicroseconds"/>: its vCPUs at their cap
    /// (100% each without one) plus a quarter of a core for the VMM's device, I/O and API threads.
    /// </summary>
    public static long QuotaMicroseconds(int vcpus, int? capPercent) =>
        (long)vcpus * (capPercent ?? 100) * PeriodMicroseconds / 100 + PeriodMicroseconds / 4;

    /// <summary>
    /// Makes (or resets) VM <paramref name="vmId"/>'s group with these limits, or returns null and why not
    /// when no cgroup hierarchy with the controllers is writable here.
    /// </summary>
    public static VmCgroup? Create(string scope, string vmId, long quotaMicroseconds, int weight, long memoryBytes, out string? unavailable)
    {
        ArgumentException.ThrowIfNullOrEmpty(vmId);
        try
        {
            if (File.Exists(Path.Combine(Root, "cgroup.controllers")))
            {
                // v2: the controllers are enabled for the root's children, of which the VM's group is one.
                File.WriteAllText(Path.Combine(Root, "cgroup.subtree_control"), "+cpu +memory");
                string group = Fresh(Path.Combine(Root, Name(scope, vmId)));
                File.WriteAllText(Path.Combine(group, "cpu.max"), $"{Invariant(quotaMicroseconds)} {Invariant(PeriodMicroseconds)}");
                File.WriteAllText(Path.Combine(group, "cpu.weight"), Invariant(Math.Clamp(weight, 1, 10_000)));
                File.WriteAllText(Path.Combine(group, "memory.max"), Invariant(memoryBytes));
                File.WriteAllText(Path.Combine(group, "memory.swap.max"), "0");
                unavailable = null;
                return new VmCgroup([group], unified: true);
            }

            string? cpu = V1Hierarchy("cpu");
            string? memory = V1Hierarchy("memory");
            if (cpu is null || memory is null)
            {
                unavailable = $"no cgroup v2 and no v1 {(cpu is null ? "cpu" : "memory")} controller under {Root}";
                return null;
            }

            string cpuGroup = Fresh(Path.Combine(cpu, Name(scope, vmId)));
            File.WriteAllText(Path.Combine(cpuGroup, "cpu.shares"), Invariant(Math.Clamp(weight * 1024L / 100, 2, 262_144))); // weight 100 = 1024, a process's
            File.WriteAllText(Path.Combine(cpuGroup, "cpu.cfs_period_us"), Invariant(PeriodMicroseconds));
            File.WriteAllText(Path.Combine(cpuGroup, "cpu.cfs_quota_us"), Invariant(quotaMicroseconds));
            string memoryGroup = Fresh(Path.Combine(memory, Name(scope, vmId)));
            File.WriteAllText(Path.Combine(memoryGroup, "memory.limit_in_bytes"), Invariant(memoryBytes));
            unavailable = null;
            return new VmCgroup([cpuGroup, memoryGroup], unified: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            unavailable = $"cgroups under {Root} cannot be written ({e.Message})";
            return null;
        }
    }

    /// <summary>Changes the CPU quota of a running VM's group (a PATCH of its cap); false if it has none.</summary>
    public static bool SetQuota(string scope, string vmId, long quotaMicroseconds)
    {
        try
        {
            string v2 = Path.Combine(Root, Name(scope, vmId), "cpu.max");
            if (File.Exists(v2))
            {
                File.WriteAllText(v2, $"{Invariant(quotaMicroseconds)} {Invariant(PeriodMicroseconds)}");
                return true;
            }

            if (V1Hierarchy("cpu") is { } cpu && File.Exists(Path.Combine(cpu, Name(scope, vmId), "cpu.cfs_quota_us")))
            {
                File.WriteAllText(Path.Combine(cpu, Name(scope, vmId), "cpu.cfs_quota_us"), Invariant(quotaMicroseconds));
                return true;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }

        return false;
    }

    /// <summary>
    /// Kills whatever still runs in VM <paramref name="vmId"/>'s groups and waits (up to 5 s) for it to go: called before the
    /// VM starts, when nothing of it should run.
    /// </summary>
    public static void KillMembers(string scope, string vmId)
    {
        ArgumentException.ThrowIfNullOrEmpty(vmId);
        var groups = Hierarchies().Select(h => Path.Combine(h, Name(scope, vmId), "cgroup.procs")).Where(File.Exists).ToList();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (watch.Elapsed < TimeSpan.FromSeconds(5))
        {
            var pids = groups.SelectMany(ReadPids).Distinct().ToList();
            if (pids.Count == 0)
            {
                return;
            }

            foreach (int pid in pids)
            {
                ProcessTable.Signal(pid, ProcessTable.SigKill);
            }

            Thread.Sleep(20);
        }
    }

    /// <summary>The VMs that have a group here (in any hierarchy), by id.</summary>
    public static IReadOnlySet<string> VmIds(string scope) =>
        Hierarchies().SelectMany(h => Directory.GetDirectories(h, scope + "-*")).Select(d => Path.GetFileName(d)![(scope.Length + 1)..]).ToHashSet(StringComparer.Ordinal);

    /// <summary>A VM's group's name in every hierarchy.</summary>
    public static string Name(string scope, string vmId) => $"{scope}-{vmId}";

    /// <summary>Every hierarchy that may hold a VM's group: v2's root (when unified), and v1's cpu and memory.</summary>
    private static IEnumerable<string> Hierarchies() =>
        (File.Exists(Path.Combine(Root, "cgroup.controllers")) ? new[] { Root } : [])
            .Concat(new[] { "cpu", "memory" }.Select(V1Hierarchy).OfType<string>());

    private static IEnumerable<int> ReadPids(string procs)
    {
        try
        {
            return File.ReadAllLines(procs).Select(l => int.Parse(l, CultureInfo.InvariantCulture)).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return [];
        }
    }

    /// <summary>Removes VM <paramref name="vmId"/>'s groups once no process is left in them (a busy one stays until the next start).</summary>
    public static void Remove(string scope, string vmId)
    {
        ArgumentException.ThrowIfNullOrEmpty(vmId);
        foreach (string group in Hierarchies().Select(h => Path.Combine(h, Name(scope, vmId))))
        {
            try
            {
                if (Directory.Exists(group))
                {
                    Directory.Delete(group); // a cgroup is removed with rmdir, its control files and all
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Still has a process (the jail's waiting parent, for a moment): Fresh clears it next time.
            }
        }
    }

    /// <summary>The v1 hierarchy that has <paramref name="controller"/> (cpu may share one with cpuacct), or null.</summary>
    private static string? V1Hierarchy(string controller)
    {
        foreach (string name in new[] { controller, $"{controller},cpuacct", $"cpuacct,{controller}" })
        {
            string path = Path.Combine(Root, name);
            if (File.Exists(Path.Combine(path, "cgroup.procs")))
            {
                return path;
            }
        }

        return null;
    }

    /// <summary>The group at <paramref name="path"/>, made anew if an earlier run left it (its processes are gone).</summary>
    private static string Fresh(string path)
    {
        if (Directory.Exists(path))
        {
            try
            {
                Directory.Delete(path);
            }
            catch (IOException)
            {
                // Still holds a process of an earlier run: reuse it; the limits are rewritten below.
            }
        }

        Directory.CreateDirectory(path);
        return path;
    }

    private static string Invariant(long value) => value.ToString(CultureInfo.InvariantCulture);
}
