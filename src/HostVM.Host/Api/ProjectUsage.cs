namespace HostVM.Host.Api;

/// <summary>What a project holds, to compare with its quotas (DiskMib: what its disks allocate on the host, rounded up).</summary>
public sealed record ProjectUsage(int Vms, long Vcpus, long MemoryMib, long DiskMib, int Images, int Networks);
