using System.Globalization;
using HostVM.Host.Api;
using HostVM.Host.Inventory;

namespace HostVM.Host.Supervision;

/// <summary>
/// The host's capacity and what VMs hold of it. vCPUs: cores × CPU overcommit; memory: (RAM − reserve)
/// × memory overcommit; disk: what the data directory's file system has free plus what VM disks take.
/// Running, paused, starting and stopping VMs hold vCPUs and memory; every VM's disk holds disk.
/// </summary>
public sealed class HostResources(HostSettings settings)
{
    public HostCapacity Capacity()
    {
        int cores = Environment.ProcessorCount;
        long memory = (long)((HostMemoryMib() - settings.MemoryReserveMib) * settings.MemoryOvercommit);
        return new HostCapacity(cores, (int)(cores * settings.CpuOvercommit), Math.Max(0, memory), FreeDiskMib(), settings.CpuOvercommit, settings.MemoryOvercommit);
    }

    public HostAllocation Allocated(IEnumerable<VmRecord> vms, string? except = null)
    {
        var list = vms.Where(v => v.Id != except).ToList();
        var running = list.Where(v => VmStates.HasProcess(v.State)).ToList();
        return new HostAllocation(running.Sum(v => v.Vcpus), running.Sum(v => v.MemoryMib), list.Sum(v => v.DiskMib));
    }

    public HostInfo Describe(IReadOnlyList<VmRecord> vms) => new(
        Environment.MachineName,
        Vmm.VmmController.Version,
        settings.DataDir,
        Capacity() with { DiskMib = FreeDiskMib() + vms.Sum(v => v.DiskMib) },
        Allocated(vms),
        new VmCounts(vms.Count, vms.Count(v => VmStates.HasProcess(v.State))));

    /// <summary>At creation: the VM alone must fit in the whole host, and its disk in the free space.</summary>
    public void CheckFitsAlone(VmRecord vm)
    {
        var capacity = Capacity();
        var shortages = new Dictionary<string, string[]>();
        if (vm.Vcpus > capacity.Vcpus)
        {
            shortages["vcpus"] = [$"{vm.Vcpus} vCPUs asked; the host has {capacity.Vcpus} ({capacity.Cores} cores × {capacity.CpuOvercommit.ToString(CultureInfo.InvariantCulture)})"];
        }

        if (vm.MemoryMib > capacity.MemoryMib)
        {
            shortages["memory_mib"] = [$"{vm.MemoryMib} MiB asked; the host has {capacity.MemoryMib} MiB for VMs"];
        }

        if (vm.DiskMib > capacity.DiskMib)
        {
            shortages["disk_mib"] = [$"{vm.DiskMib} MiB asked; {capacity.DiskMib} MiB free"];
        }

        ThrowIfShort(vm, shortages);
    }

    /// <summary>At start: the VM's vCPUs and memory must fit in what the running VMs leave.</summary>
    public void Admit(VmRecord vm, IReadOnlyList<VmRecord> all)
    {
        var capacity = Capacity();
        var used = Allocated(all, except: vm.Id);
        var shortages = new Dictionary<string, string[]>();
        if (used.Vcpus + vm.Vcpus > capacity.Vcpus)
        {
            shortages["vcpus"] = [$"{vm.Vcpus} vCPUs asked, {capacity.Vcpus - used.Vcpus} free of {capacity.Vcpus} ({capacity.Cores} cores × {capacity.CpuOvercommit.ToString(CultureInfo.InvariantCulture)} overcommit)"];
        }

        if (used.MemoryMib + vm.MemoryMib > capacity.MemoryMib)
        {
            shortages["memory_mib"] = [$"{vm.MemoryMib} MiB asked, {capacity.MemoryMib - used.MemoryMib} MiB free of {capacity.MemoryMib} MiB (overcommit {capacity.MemoryOvercommit.ToString(CultureInfo.InvariantCulture)})"];
        }

        ThrowIfShort(vm, shortages);
    }

    private static void ThrowIfShort(VmRecord vm, Dictionary<string, string[]> shortages)
    {
        if (shortages.Count > 0)
        {
            throw new ApiProblem(409, "does-not-fit", "The VM does not fit on this host",
                $"VM '{vm.Name}' does not fit: " + string.Join("; ", shortages.Select(s => $"{s.Key.Replace("_mib", string.Empty, StringComparison.Ordinal)}: {s.Value[0]}")),
                shortages);
        }
    }

    private long FreeDiskMib()
    {
        try
        {
            return new DriveInfo(settings.DataDir).AvailableFreeSpace >> 20;
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>MemTotal from /proc/meminfo, in MiB.</summary>
    public static long HostMemoryMib()
    {
        foreach (var line in File.ReadLines("/proc/meminfo"))
        {
            if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
            }
        }

        return 0;
    }
}
