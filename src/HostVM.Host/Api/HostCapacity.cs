namespace HostVM.Host.Api;

/// <summary>What the host offers VMs: vCPUs = cores × CPU overcommit, memory = (RAM − reserve) × memory overcommit, disk = free space.</summary>
public sealed record HostCapacity(int Cores, int Vcpus, long MemoryMib, long DiskMib, double CpuOvercommit, double MemoryOvercommit);
