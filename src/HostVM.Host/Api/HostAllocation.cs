namespace HostVM.Host.Api;

/// <summary>What running and paused VMs hold (vCPUs, memory) and what all VMs' disks take.</summary>
public sealed record HostAllocation(int Vcpus, long MemoryMib, long DiskMib);
