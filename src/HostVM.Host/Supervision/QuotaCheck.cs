using HostVM.Host.Api;
using HostVM.Host.Inventory;

namespace HostVM.Host.Supervision;

/// <summary>
/// A project's quotas against its VMs plus one more: 409 quota-exceeded naming each quota it would pass. Its disk quota counts
/// allocated bytes, not VMs: <see cref="Storage.VolumeManager.AdmitDisk"/>.
/// </summary>
public static class QuotaCheck
{
    public static void Admit(string project, ProjectQuotas quotas, IReadOnlyCollection<VmRecord> existing, VmRecord adding)
    {
        ArgumentNullException.ThrowIfNull(quotas);
        ArgumentNullException.ThrowIfNull(existing);
        ArgumentNullException.ThrowIfNull(adding);
        var errors = new Dictionary<string, string[]>();
        void Check(string field, long? limit, long used, long more, string unit)
        {
            if (limit is { } max && used + more > max)
            {
                errors[field] = [$"project '{project}' has {used}{unit} of {max}{unit}; this VM needs {more}{unit} more."];
            }
        }

        Check("max_vms", quotas.MaxVms, existing.Count, 1, string.Empty);
        Check("max_vcpus", quotas.MaxVcpus, existing.Sum(v => (long)v.Vcpus), adding.Vcpus, " vCPUs");
        Check("max_memory_mib", quotas.MaxMemoryMib, existing.Sum(v => v.MemoryMib), adding.MemoryMib, " MiB");
        if (errors.Count > 0)
        {
            throw new ApiProblem(409, "quota-exceeded", "The project's quota would be exceeded",
                $"VM '{adding.Name}' does not fit in project '{project}': {string.Join(" ", errors.Values.Select(e => e[0]))} Raise the quota (hostvm project set) or free resources.", errors);
        }
    }
}
